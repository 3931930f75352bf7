import { DEFAULT_POOL_NAME, POOL_MODULE_OPTIONS_PREFIX, POOL_TOKEN_PREFIX } from './pool.constants.js';

/** The injection token of a named pool: inject it with `@InjectPool(name)` or `@Inject(getPoolToken(name))`. */
export function getPoolToken(name: string = DEFAULT_POOL_NAME): string {
  return `${POOL_TOKEN_PREFIX}${name}`;
}

/** The token of the options a forRootAsync() factory produced for pool `name`. */
export function getPoolOptionsToken(name: string = DEFAULT_POOL_NAME): string {
  return `${POOL_MODULE_OPTIONS_PREFIX}${name}`;
}
