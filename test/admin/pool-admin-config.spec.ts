/**
 * PoolAdminModule refuses to be configured without auth, with a weak token or with paths that would not
 * route as written; errors are typed (PoolAdminConfigError is a PoolConfigError naming the field) and thrown
 * by forRoot() itself. The resolved options never show the token.
 */
import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import { inspect } from 'node:util';
import { PoolConfigError, PoolError } from '../../lib/index.js';
import { PoolAdminConfigError, PoolAdminModule, type PoolAdminModuleOptions } from '../../lib/admin/index.js';
import { resolvePoolAdminAuth } from '../../lib/admin/pool-admin-options.js';
import { relativePath } from '../../lib/admin/pool-admin-page.controller.js';

const TOKEN = 'a-long-enough-admin-token';

function configError(options: unknown): PoolAdminConfigError {
  try {
    PoolAdminModule.forRoot(options as PoolAdminModuleOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(PoolAdminConfigError);
    expect(error).toBeInstanceOf(PoolConfigError);
    expect(error).toBeInstanceOf(PoolError);
    return error as PoolAdminConfigError;
  }
  throw new Error(`forRoot(${inspect(options)}) did not throw`);
}

describe('PoolAdminModule.forRoot validation', () => {
  it('refuses to start without a token or a guard, naming the field', () => {
    for (const options of [{}, { path: 'x' }, { token: undefined, guard: undefined }]) {
      const error = configError(options);
      expect(error.field).toBe('token');
      expect(error.name).toBe('PoolAdminConfigError');
      expect(error.message).toMatch(/^PoolAdminModule: invalid option "token": .*needs authentication/);
    }
    expect(configError(undefined).field).toBe('options');
  });

  it('refuses tokens shorter than 16 characters, without echoing them', () => {
    const error = configError({ token: 'short-secret' });
    expect(error.field).toBe('token');
    expect(error.message).toContain('at least 16 characters (got 12)');
    expect(error.message).not.toContain('short-secret');
    expect(configError({ token: 1234567890123456 }).field).toBe('token');
  });

  it("refuses tokens a Bearer header could never carry (spaces, a secret file's trailing newline)", () => {
    for (const token of [`${TOKEN}\n`, 'correct horse battery staple', `${TOKEN}\u00e9`]) {
      const error = configError({ token });
      expect(error.field).toBe('token');
      expect(error.message).toContain('printable ASCII without spaces or line breaks');
      expect(error.message).not.toContain(TOKEN);
    }
  });

  it('refuses a guard that is neither a class nor an object with canActivate', () => {
    expect(configError({ guard: { check: () => true } }).field).toBe('guard');
    expect(configError({ guard: 'AuthGuard' }).field).toBe('guard');
  });

  it('refuses paths with parameters or wildcards, and a dashboard inside the API path', () => {
    expect(configError({ token: TOKEN, path: 'pools/:id' }).field).toBe('path');
    expect(configError({ token: TOKEN, path: '/' }).field).toBe('path');
    expect(configError({ token: TOKEN, path: 'a*' }).field).toBe('path');
    expect(configError({ token: TOKEN, dashboardPath: 'x y' }).field).toBe('dashboardPath');
    const inside = configError({ token: TOKEN, path: 'admin/pools', dashboardPath: 'admin/pools/ui' });
    expect(inside.field).toBe('dashboardPath');
    expect(configError({ token: TOKEN, path: 'ops', dashboardPath: 'ops' }).field).toBe('dashboardPath');
  });

  it('accepts a token, a guard class or instance, and normalises paths', () => {
    class Guard {
      canActivate(): boolean {
        return true;
      }
    }
    const module = PoolAdminModule.forRoot({ token: TOKEN, path: '/ops/pools/', dashboardPath: '/ops/ui' });
    expect(module.controllers).toHaveLength(2);
    expect(PoolAdminModule.forRoot({ guard: Guard, dashboardPath: false }).controllers).toHaveLength(1);
    expect(PoolAdminModule.forRoot({ guard: new Guard() }).controllers).toHaveLength(2);
  });

  it('keeps the token out of the resolved options and compares it exactly', () => {
    const auth = resolvePoolAdminAuth({ token: TOKEN });
    expect(inspect(auth, { showHidden: true, depth: 5 })).not.toContain(TOKEN);
    expect(JSON.stringify(auth)).not.toContain(TOKEN);
    expect(auth.requiresToken).toBe(true);
    expect(auth.matchesToken(TOKEN)).toBe(true);
    expect(auth.matchesToken(`${TOKEN} `)).toBe(false);
    expect(auth.matchesToken(TOKEN.slice(1))).toBe(false);
    expect(auth.matchesToken('')).toBe(false);
  });
});

describe('the page finds the API relative to its own URL', () => {
  it.each([
    ['admin/dashboard', 'admin/pools', '../admin/pools'],
    ['dashboard', 'pools', './pools'],
    ['ops/ui/dashboard', 'ops/pools', '../../ops/pools'],
  ])('from %s to %s: %s', (from, to, expected) => {
    expect(relativePath(from, to)).toBe(expected);
    // Resolved under a global prefix, as the browser does:
    expect(new URL(expected, `http://h/api/${from}`).pathname).toBe(`/api/${to}`);
  });
});
