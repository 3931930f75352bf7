/**
 * Injection tokens and defaults of the admin module. Tokens are strings, not symbols or classes, so the ESM
 * and CommonJS builds of the package agree on them when an app happens to load both.
 */

/** The resolved PoolAdminModule options (see `resolvePoolAdminOptions`). */
export const POOL_ADMIN_OPTIONS = 'nestjs-pool:admin-options';

/** Route metadata marking the dashboard page, which the bearer token does not guard (see the auth guard). */
export const POOL_ADMIN_PAGE = 'nestjs-pool:admin-page';

/** Where the JSON API is mounted unless `path` says otherwise (under the app's global prefix, if any). */
export const DEFAULT_ADMIN_PATH = 'admin/pools';

/** Where the HTML dashboard is served unless `dashboardPath` says otherwise. */
export const DEFAULT_DASHBOARD_PATH = 'admin/dashboard';

/** Shorter tokens are refused: the admin API can pause and drain every pool. */
export const MIN_ADMIN_TOKEN_LENGTH = 16;
