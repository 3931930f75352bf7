/**
 * Loading a backend's driver. Drivers are optional peer dependencies, imported only when a pool of that
 * backend starts: `import()` works in both builds (TypeScript's CommonJS output turns it into `require`),
 * and nothing is loaded by merely importing this package.
 */
import { PoolError } from '../core/index.js';
import { PoolDriverMissingError } from './pool-driver-missing-error.js';

export interface LoadDriverOptions {
  poolName: string;
  backend: string;
  /** The npm package, e.g. `pg`: named in the error when it is missing. */
  packageName: string;
  /**
   * Imports it, e.g. `() => import('pg')`. A literal specifier in the backend (rather than a variable
   * here) lets bundlers and TypeScript see the dependency.
   */
  importer: () => Promise<unknown>;
}

/**
 * Imports a driver; resolves with its module namespace. Rejects with PoolDriverMissingError when the
 * package is not installed, and with a PoolError (the import failure as `cause`) when it is but fails to load.
 */
export async function loadDriver(options: LoadDriverOptions): Promise<unknown> {
  try {
    return await options.importer();
  } catch (error) {
    if (isPackageNotFound(error, options.packageName)) {
      throw new PoolDriverMissingError(options.poolName, options.backend, options.packageName);
    }
    const message = messageOf(error) ?? String(error);
    throw new PoolError(options.poolName, `could not load the "${options.packageName}" package: ${message}`, {
      cause: error,
    });
  }
}

/**
 * An export of a driver module, whichever way it was loaded: a named ESM export, or a property of the
 * CommonJS `module.exports` that Node (ESM) and TypeScript's interop (CJS) expose as `default`.
 */
export function moduleExport(namespace: unknown, name: string): unknown {
  if (!isObjectLike(namespace)) return undefined;
  const direct = (namespace as Record<string, unknown>)[name];
  if (direct !== undefined) return direct;
  const fallback = (namespace as Record<string, unknown>)['default'];
  return isObjectLike(fallback) ? (fallback as Record<string, unknown>)[name] : undefined;
}

/**
 * Node (ESM: ERR_MODULE_NOT_FOUND, CJS: MODULE_NOT_FOUND) and Jest report a missing package with its name
 * quoted. Requiring the quoted name tells "pg is missing" from "pg is there but a dependency of it is not".
 */
function isPackageNotFound(error: unknown, packageName: string): boolean {
  const message = messageOf(error);
  if (message === undefined) return false;
  const code = (error as { code?: unknown }).code;
  const notFound =
    code === 'ERR_MODULE_NOT_FOUND' ||
    code === 'MODULE_NOT_FOUND' ||
    /Cannot find (module|package)/.test(message);
  return notFound && (message.includes(`'${packageName}'`) || message.includes(`"${packageName}"`));
}

/** Duck-typed: an import error may come from another realm (a VM context), where `instanceof Error` fails. */
function messageOf(error: unknown): string | undefined {
  const message =
    typeof error === 'object' && error !== null ? (error as { message?: unknown }).message : undefined;
  return typeof message === 'string' ? message : undefined;
}

function isObjectLike(value: unknown): value is object {
  return (typeof value === 'object' || typeof value === 'function') && value !== null;
}
