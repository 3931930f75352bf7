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
  Optional,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
  type OnModuleInit,
  type Type,
} from '@nestjs/common';
import { HttpAdapterHost, ModuleRef, Reflector } from '@nestjs/core';
import { isObservable, lastValueFrom } from 'rxjs';
import { runBootstrapStep } from '../nest/bootstrap-step.js';
import { POOL_MANAGER } from '../nest/pool.constants.js';
import { POOL_ADMIN_OPTIONS, POOL_ADMIN_PAGE } from './pool-admin.constants.js';
import { PoolAdminConfigError } from './pool-admin-config-error.js';
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
    // By its string token (the manager may be the other build's); without PoolModule, none.
    @Optional() @Inject(POOL_MANAGER) private readonly manager?: unknown,
  ) {}

  /**
   * Resolves the user's guard at bootstrap, so a guard whose dependencies are missing, or that is no guard,
   * fails the start; under the PoolManager's eye, so that the pools already open are then closed.
   */
  async onModuleInit(): Promise<void> {
    this.#userGuard = await runBootstrapStep(this.manager, () => this.resolveUserGuard());
  }

  private async resolveUserGuard(): Promise<CanActivate | undefined> {
    const { guard } = this.auth;
    if (guard === undefined || typeof guard !== 'function') return guard;
    const guardClass = guard as Type<CanActivate>;
    let instance: CanActivate;
    try {
      instance = this.moduleRef.get(guardClass, { strict: false });
    } catch {
      // Not a provider anywhere: instantiate it with its dependencies from this module's scope.
      instance = await this.moduleRef.create(guardClass);
    }
    // Checked on the instance (canActivate may be an instance property): without it, every admin request
    // would fail with a 500.
    if (typeof (instance as Partial<CanActivate> | undefined)?.canActivate !== 'function') {
      throw new PoolAdminConfigError(
        'guard',
        `${guardClass.name || 'the guard class'} has no canActivate() method; a guard must implement CanActivate`,
      );
    }
    return instance;
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
