/**
 * Guards every admin route: the bearer token (401 when missing or wrong), then the user's guard (403 when it
 * says no), then, for actions, a same-origin check against cross-site requests.
 *
 * The dashboard page skips the token: a browser cannot send an Authorization header when it navigates, and
 * the page holds no data (it asks for the token and sends it with every API call). The user's guard still
 * applies to it, so cookie- or network-based auth protects the page too.
 */
import {
  ForbiddenException,
  Inject,
  Injectable,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
  type OnModuleInit,
  type Type,
} from '@nestjs/common';
import { HttpAdapterHost, ModuleRef, Reflector } from '@nestjs/core';
import { isObservable, lastValueFrom } from 'rxjs';
import { POOL_ADMIN_OPTIONS, POOL_ADMIN_PAGE } from './pool-admin.constants.js';
import type { ResolvedPoolAdminAuth } from './pool-admin-options.js';

interface AdminRequest {
  method?: string;
  headers: Record<string, string | string[] | undefined>;
}

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/** Browsers label cross-site requests with this header; tools such as curl send none. */
const SAME_SITE_FETCH = new Set(['same-origin', 'none']);

@Injectable()
export class PoolAdminAuthGuard implements CanActivate, OnModuleInit {
  #userGuard: CanActivate | undefined;

  constructor(
    @Inject(POOL_ADMIN_OPTIONS) private readonly auth: ResolvedPoolAdminAuth,
    @Inject(ModuleRef) private readonly moduleRef: ModuleRef,
    @Inject(Reflector) private readonly reflector: Reflector,
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
  ) {}

  /** Resolves the user's guard at bootstrap, so a guard whose dependencies are missing fails the start. */
  async onModuleInit(): Promise<void> {
    const { guard } = this.auth;
    if (guard === undefined || typeof guard !== 'function') {
      this.#userGuard = guard;
      return;
    }
    const guardClass = guard as Type<CanActivate>;
    try {
      this.#userGuard = this.moduleRef.get(guardClass, { strict: false });
    } catch {
      // Not a provider anywhere: instantiate it with its dependencies from this module's scope.
      this.#userGuard = await this.moduleRef.create(guardClass);
    }
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<AdminRequest>();
    const isPage = this.reflector.get<boolean | undefined>(POOL_ADMIN_PAGE, context.getHandler()) === true;
    if (this.auth.requiresToken && !isPage) this.checkToken(context, request);
    if (this.#userGuard !== undefined) {
      const verdict = this.#userGuard.canActivate(context);
      const allowed = isObservable(verdict) ? await lastValueFrom(verdict) : await verdict;
      if (!allowed) throw new ForbiddenException('the admin guard denied this request');
    }
    const method = (request.method ?? 'GET').toUpperCase();
    if (method !== 'GET' && method !== 'HEAD') {
      const site = header(request, 'sec-fetch-site');
      if (site !== undefined && !SAME_SITE_FETCH.has(site)) {
        throw new ForbiddenException('cross-site requests may not change pools');
      }
    }
    return true;
  }

  private checkToken(context: ExecutionContext, request: AdminRequest): void {
    const match = BEARER.exec(header(request, 'authorization') ?? '');
    if (match !== null && this.auth.matchesToken(match[1])) return;
    const adapter = this.adapterHost.httpAdapter;
    adapter?.setHeader(context.switchToHttp().getResponse(), 'WWW-Authenticate', 'Bearer realm="pools"');
    throw new UnauthorizedException(
      match === null ? 'send Authorization: Bearer <token>' : 'the bearer token is not valid',
    );
  }
}

function header(request: AdminRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
