/** PoolAdminModule's options, and their validation (the module refuses to start without auth). */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { CanActivate, ModuleMetadata, Type } from '@nestjs/common';
import {
  DEFAULT_ADMIN_PATH,
  DEFAULT_DASHBOARD_PATH,
  MIN_ADMIN_TOKEN_LENGTH,
} from './pool-admin.constants.js';
import { PoolAdminConfigError } from './pool-admin-config-error.js';

/** Who may use the admin API: a bearer token, a Nest guard, or both (then both must pass). */
export interface PoolAdminAuthOptions {
  /**
   * Requests must send `Authorization: Bearer <token>` (401 otherwise). At least 16 characters; compared in
   * constant time. The HTML page itself is not behind the token (a browser cannot send it on navigation):
   * it holds no data and asks for the token, which it keeps in sessionStorage.
   */
  token?: string;
  /**
   * A guard (class, resolved through the module's injector, or instance) every admin route, the page
   * included, must pass; `false` answers 403.
   */
  guard?: Type<CanActivate> | CanActivate;
}

/** Where the routes live; static even with forRootAsync, since Nest registers routes before factories run. */
export interface PoolAdminRouteOptions {
  /** Base path of the JSON API, under the app's global prefix. Default `admin/pools`. */
  path?: string;
  /** Path of the HTML dashboard, or `false` for none. Default `admin/dashboard`. */
  dashboardPath?: string | false;
  /** Modules the guard's dependencies come from (a global module needs no import). */
  imports?: ModuleMetadata['imports'];
}

export interface PoolAdminModuleOptions extends PoolAdminAuthOptions, PoolAdminRouteOptions {}

export interface PoolAdminModuleAsyncOptions extends PoolAdminRouteOptions {
  /** Returns the token and/or guard; runs during bootstrap, which fails if it returns neither. */
  useFactory: (...args: never[]) => PoolAdminAuthOptions | Promise<PoolAdminAuthOptions>;
  inject?: (
    string | symbol | Type<unknown> | { token: string | symbol | Type<unknown>; optional: boolean }
  )[];
}

/** The routes, normalised: no leading or trailing slash. */
export interface ResolvedPoolAdminRoutes {
  readonly path: string;
  readonly dashboardPath: string | false;
}

/** The auth options, resolved. The token itself is kept in a closure: no property, log or dump shows it. */
export interface ResolvedPoolAdminAuth {
  readonly requiresToken: boolean;
  /** Constant-time comparison of a presented token with the configured one. */
  matchesToken(candidate: string): boolean;
  readonly guard: Type<CanActivate> | CanActivate | undefined;
}

/** A path made of plain segments: no route parameters or wildcards, which would change what it matches. */
const PLAIN_PATH = /^[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*$/;

export function resolvePoolAdminRoutes(options: PoolAdminRouteOptions): ResolvedPoolAdminRoutes {
  const path = normalisePath('path', options.path ?? DEFAULT_ADMIN_PATH);
  const dashboardPath =
    options.dashboardPath === false
      ? false
      : normalisePath('dashboardPath', options.dashboardPath ?? DEFAULT_DASHBOARD_PATH);
  if (dashboardPath !== false && (dashboardPath === path || dashboardPath.startsWith(`${path}/`))) {
    throw new PoolAdminConfigError(
      'dashboardPath',
      `"${dashboardPath}" lies inside the API path "${path}", where it would shadow a pool's route; ` +
        `choose a path outside it (default "${DEFAULT_DASHBOARD_PATH}")`,
    );
  }
  return { path, dashboardPath };
}

/** Throws a PoolAdminConfigError unless a usable token or a guard is configured. */
export function resolvePoolAdminAuth(options: PoolAdminAuthOptions | undefined): ResolvedPoolAdminAuth {
  if (typeof options !== 'object' || options === null) {
    throw new PoolAdminConfigError('options', 'must be an object with a `token` and/or a `guard`');
  }
  const { token, guard } = options;
  if (token === undefined && guard === undefined) {
    throw new PoolAdminConfigError(
      'token',
      'the admin API can pause and drain pools, so it needs authentication: set `token` (sent as ' +
        '`Authorization: Bearer <token>`) and/or `guard` (a Nest CanActivate)',
    );
  }
  if (token !== undefined && (typeof token !== 'string' || token.length < MIN_ADMIN_TOKEN_LENGTH)) {
    throw new PoolAdminConfigError(
      'token',
      `must be a string of at least ${MIN_ADMIN_TOKEN_LENGTH} characters` +
        (typeof token === 'string' ? ` (got ${token.length})` : ''),
    );
  }
  // Sent as `Authorization: Bearer <token>`, a header value the guard reads up to the first blank: a token
  // with a space or a line break (a secret file's trailing newline) could never match. Said now, not by 401s.
  if (typeof token === 'string' && !/^[\x21-\x7e]+$/.test(token)) {
    throw new PoolAdminConfigError(
      'token',
      'must be printable ASCII without spaces or line breaks (a token read from a file: trim it)',
    );
  }
  if (guard !== undefined && !isGuard(guard)) {
    throw new PoolAdminConfigError('guard', 'must be a CanActivate class or an object with canActivate()');
  }
  return { requiresToken: token !== undefined, matchesToken: tokenMatcher(token), guard };
}

/**
 * Compares SHA-256 digests with timingSafeEqual: equal lengths whatever the candidate, so neither the
 * content nor the length of the token leaks through timing.
 */
function tokenMatcher(token: string | undefined): (candidate: string) => boolean {
  if (token === undefined) return () => false;
  const expected = createHash('sha256').update(token, 'utf8').digest();
  return (candidate) => timingSafeEqual(createHash('sha256').update(candidate, 'utf8').digest(), expected);
}

/** A class (anything callable) or an object with `canActivate`: no instanceof, which breaks across builds. */
function isGuard(value: unknown): value is Type<CanActivate> | CanActivate {
  if (typeof value === 'function') return true;
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { canActivate?: unknown }).canActivate === 'function'
  );
}

function normalisePath(field: string, value: unknown): string {
  if (typeof value !== 'string') {
    throw new PoolAdminConfigError(field, `must be a string (got ${typeof value})`);
  }
  const path = value.replace(/^\/+|\/+$/g, '');
  if (!PLAIN_PATH.test(path)) {
    throw new PoolAdminConfigError(
      field,
      `"${value}" must be a non-empty path of plain segments (letters, digits, ".", "_", "~", "-")`,
    );
  }
  return path;
}
