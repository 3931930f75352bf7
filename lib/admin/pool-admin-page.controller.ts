/** Serves the dashboard page at its configured path (built per forRoot() call, like the API controller). */
import { Controller, Get, Header, SetMetadata, UseGuards, type Type } from '@nestjs/common';
import { renderDashboardPage } from './dashboard-page.js';
import { POOL_ADMIN_PAGE } from './pool-admin.constants.js';
import { PoolAdminAuthGuard } from './pool-admin-auth.guard.js';

export function createPoolAdminPageController(dashboardPath: string, apiPath: string): Type<unknown> {
  const page = renderDashboardPage(relativePath(dashboardPath, apiPath));

  @Controller(dashboardPath)
  @UseGuards(PoolAdminAuthGuard)
  class PoolAdminPageController {
    @Get()
    @SetMetadata(POOL_ADMIN_PAGE, true)
    @Header('Content-Type', 'text/html; charset=utf-8')
    @Header('Content-Security-Policy', page.contentSecurityPolicy)
    @Header('Cache-Control', 'no-store')
    @Header('Referrer-Policy', 'no-referrer')
    @Header('X-Content-Type-Options', 'nosniff')
    @Header('X-Frame-Options', 'DENY')
    dashboard(): string {
      return page.html;
    }
  }
  return PoolAdminPageController;
}

/**
 * The API path relative to the page's URL, so the page finds the API under whatever global prefix the app
 * sets: from `admin/dashboard` to `admin/pools` is `../admin/pools`.
 */
export function relativePath(fromPath: string, toPath: string): string {
  const depth = fromPath.split('/').length - 1;
  return depth === 0 ? `./${toPath}` : `${'../'.repeat(depth)}${toPath}`;
}
