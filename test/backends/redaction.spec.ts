/** The redaction helpers every backend shares. */
import { describe, expect, it } from '@jest/globals';
import {
  Redactor,
  redactUri,
  redactUriCredentials,
  withQueryTimeout,
  PoolQueryTimeoutError,
} from '../../lib/index.js';
import { secretsOfOptions, secretsOfUri } from '../../lib/backends/redaction.js';

describe('redactUri', () => {
  it('replaces the password and secret query parameters, keeps the rest', () => {
    expect(redactUri('postgres://app:secret@127.0.0.1:5432/test?application_name=api')).toBe(
      'postgres://app:***@127.0.0.1:5432/test?application_name=api',
    );
    expect(redactUri('postgres://127.0.0.1/test?user=app&password=secret')).toBe(
      'postgres://127.0.0.1/test?user=app&password=***',
    );
    expect(redactUri('redis://:p%40ss@localhost:6379/0')).toBe('redis://:***@localhost:6379/0');
    expect(redactUri('postgres://app@host/db')).toBe('postgres://app@host/db');
  });

  it('never echoes an unparseable URI', () => {
    expect(redactUri('postgres://app:secret@[oops')).toBe('<invalid URI>');
  });
});

describe('redactUriCredentials (free text)', () => {
  it('finds URIs and password= assignments anywhere', () => {
    expect(
      redactUriCredentials(
        'failed: connect postgres://app:secret@db:5432/x and mongodb://u:p@h; password=hunter2 ok',
      ),
    ).toBe('failed: connect postgres://app:***@db:5432/x and mongodb://u:***@h; password=*** ok');
  });
});

describe('secret collection', () => {
  it('takes the URI password in both spellings and secret query parameters', () => {
    expect(secretsOfUri('postgres://app:p%40ss%2Fw@h/db?sslpassword=k3y')).toEqual(
      expect.arrayContaining(['p%40ss%2Fw', 'p@ss/w', 'k3y']),
    );
    expect(secretsOfUri('not a uri')).toEqual([]);
    expect(secretsOfUri(undefined)).toEqual([]);
  });

  it('takes password-like keys from nested driver options', () => {
    expect(
      secretsOfOptions({
        host: 'h',
        password: 'pw1',
        auth: { username: 'u', password: 'pw2' },
        tls: { passphrase: 'pp' },
      }),
    ).toEqual(['pw1', 'pw2', 'pp']);
  });
});

describe('Redactor', () => {
  it('replaces known secrets (longest first) and URI credentials in text', () => {
    const redactor = new Redactor(['hunter2', 'hunter2-long', undefined, 'ab']);
    expect(redactor.text('a hunter2-long b hunter2 c ab')).toBe('a *** b *** c ab'); // 'ab' is too short
    expect(redactor.leaks('x hunter2')).toBe(true);
    redactor.add('later-secret');
    expect(redactor.text('later-secret')).toBe('***');
  });

  it('scrubs an error in place through its cause chain, keeping class and fields', () => {
    const redactor = new Redactor(['s3cret']);
    const root = new TypeError('root s3cret');
    const aggregate = new AggregateError([root], 'aggregate s3cret');
    const error = Object.assign(new RangeError('top s3cret', { cause: aggregate }), {
      code: 'E1',
      detail: 's3cret!',
    });
    const circular = new Error('circular s3cret');
    Object.assign(circular, { cause: circular });

    expect(redactor.error(error)).toBe(error);
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toBe('top ***');
    expect(error.stack).not.toContain('s3cret');
    expect(error.code).toBe('E1');
    expect(error.detail).toBe('***!');
    expect(aggregate.message).toBe('aggregate ***');
    expect(root.message).toBe('root ***');
    expect(redactor.error(circular).message).toBe('circular ***');
    expect(redactor.error('not an error')).toBe('not an error');
  });
});

describe('withQueryTimeout', () => {
  it('passes results through and disables itself for Infinity', async () => {
    await expect(
      withQueryTimeout(Promise.resolve(1), { poolName: 'p', timeoutMs: 50, onTimeout: () => {} }),
    ).resolves.toBe(1);
    await expect(
      withQueryTimeout(Promise.reject(new Error('x')), { poolName: 'p', timeoutMs: 50, onTimeout: () => {} }),
    ).rejects.toThrow('x');
    const never = new Promise<never>(() => {});
    expect(
      withQueryTimeout(never, { poolName: 'p', timeoutMs: Infinity, onTimeout: () => {} }),
    ).toBeInstanceOf(Promise);
  });

  it('rejects PoolQueryTimeoutError after the timeout, calling onTimeout first, and absorbs the late outcome', async () => {
    const calls: string[] = [];
    let rejectLate!: (error: Error) => void;
    const slow = new Promise<never>((_, reject) => (rejectLate = reject));
    const result = withQueryTimeout(slow, {
      poolName: 'p',
      timeoutMs: 30,
      onTimeout: (error) => calls.push(error.message),
    });
    await expect(result).rejects.toBeInstanceOf(PoolQueryTimeoutError);
    expect(calls).toEqual(['Pool "p": query timed out after 30 ms; its connection was destroyed']);
    rejectLate(new Error('late')); // no unhandled rejection
  });
});
