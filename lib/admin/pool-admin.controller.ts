/**
 * The JSON API. Its path is an option, and Nest reads route paths from decorators, so the controller class
 * is built per PoolAdminModule.forRoot() call rather than declared once.
 */
import {
  BadRequestException,
  Body,
  Controller,
  Get,
  Header,
  HttpCode,
  Inject,
  NotFoundException,
  Optional,
  Param,
  Post,
  type Type,
  UseGuards,
} from '@nestjs/common';
import { MAX_TIMER_MS } from '../core/index.js';
import type { ManagedPool } from '../nest/managed-pool.js';
import { POOL_MANAGER } from '../nest/pool.constants.js';
import { NO_POOLS, type PoolRegistry } from '../nest/pool-registry.js';
import { PoolAdminAuthGuard } from './pool-admin-auth.guard.js';
import {
  describeConnections,
  summarizePool,
  type PoolAdminConnections,
  type PoolAdminDrainResult,
  type PoolAdminList,
  type PoolAdminSummary,
} from './pool-admin.views.js';

/** Routes (under the app's global prefix): `<path>`, `<path>/:name`, `<path>/:name/connections`, actions. */
export function createPoolAdminController(path: string): Type<unknown> {
  @Controller(path)
  @UseGuards(PoolAdminAuthGuard)
  class PoolAdminController {
    private readonly pools: PoolRegistry;

    constructor(@Optional() @Inject(POOL_MANAGER) pools?: PoolRegistry) {
      this.pools = pools ?? NO_POOLS;
    }

    @Get()
    @Header('Cache-Control', 'no-store')
    list(): PoolAdminList {
      return {
        generatedAt: Date.now(),
        pools: this.pools.names().map((name) => summarizePool(this.pools.get(name))),
      };
    }

    @Get(':name')
    @Header('Cache-Control', 'no-store')
    one(@Param('name') name: string): PoolAdminSummary {
      return summarizePool(this.pool(name));
    }

    @Get(':name/connections')
    @Header('Cache-Control', 'no-store')
    connections(@Param('name') name: string): PoolAdminConnections {
      return describeConnections(this.pool(name));
    }

    /** New acquires wait until `resume`; lent connections are unaffected. */
    @Post(':name/pause')
    @HttpCode(200)
    pause(@Param('name') name: string): PoolAdminSummary {
      const pool = this.pool(name);
      pool.pause();
      return summarizePool(pool);
    }

    @Post(':name/resume')
    @HttpCode(200)
    resume(@Param('name') name: string): PoolAdminSummary {
      const pool = this.pool(name);
      pool.resume();
      return summarizePool(pool);
    }

    /**
     * Stops lending (waiters get PoolClosedError) and waits up to `timeoutMs` (default 10 s) for lent
     * connections; `resume` lends again.
     */
    @Post(':name/drain')
    @HttpCode(200)
    async drain(@Param('name') name: string, @Body() body: unknown): Promise<PoolAdminDrainResult> {
      const pool = this.pool(name);
      const result = await pool.drain({ timeoutMs: drainTimeout(body) });
      return { name: pool.name, drained: result.drained, active: result.active, state: pool.state };
    }

    private pool(name: string): ManagedPool {
      // has() first: PoolManager.get()'s error lists every pool and suggests config, meant for developers.
      if (!this.pools.has(name)) throw new NotFoundException(`no pool named "${name}"`);
      return this.pools.get(name);
    }
  }
  return PoolAdminController;
}

/** `{ "timeoutMs": n }`, or no body at all. */
function drainTimeout(body: unknown): number | undefined {
  if (body === undefined || body === null || typeof body !== 'object') return undefined;
  const { timeoutMs } = body as { timeoutMs?: unknown };
  if (timeoutMs === undefined) return undefined;
  if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0 && timeoutMs <= MAX_TIMER_MS)) {
    throw new BadRequestException(
      `timeoutMs must be a non-negative number of milliseconds, at most ${MAX_TIMER_MS}`,
    );
  }
  return timeoutMs;
}
