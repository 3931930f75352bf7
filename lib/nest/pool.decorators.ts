import { Inject } from '@nestjs/common';
import { getPoolToken } from './pool.utils.js';

/**
 * Injects the pool registered under `name` (default `'default'`). Type the parameter with the backend's pool
 * class: `@InjectPool('users') users: PostgresPool`.
 */
export const InjectPool = (name?: string): ParameterDecorator & PropertyDecorator =>
  Inject(getPoolToken(name));
