/** nestjs-pool/admin: the opt-in admin API and dashboard (PoolAdminModule). */
export { PoolAdminModule } from './pool-admin.module.js';
export { PoolAdminConfigError } from './pool-admin-config-error.js';
export {
  DEFAULT_ADMIN_PATH,
  DEFAULT_DASHBOARD_PATH,
  MIN_ADMIN_TOKEN_LENGTH,
} from './pool-admin.constants.js';
export { DASHBOARD_REFRESH_MS } from './dashboard-page.js';
export type {
  PoolAdminAuthOptions,
  PoolAdminModuleAsyncOptions,
  PoolAdminModuleOptions,
  PoolAdminRouteOptions,
} from './pool-admin-options.js';
export type {
  PoolAdminConnections,
  PoolAdminDrainResult,
  PoolAdminList,
  PoolAdminSummary,
  PoolAdminMember,
  PoolAdminConnection,
} from './pool-admin.views.js';
