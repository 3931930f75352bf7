/**
 * Keeping credentials out of everything a pool lets out: error messages (and their `cause` chains), events,
 * `metrics()`, `checkHealth()`, `inspect()`/`toJSON()` and the target a pool is logged under.
 *
 * Two layers, because neither is enough alone:
 * - structural: `scheme://user:password@host` becomes `scheme://user:***@host` wherever it appears in text,
 *   so a URI echoed by a driver is safe even before we know its password;
 * - literal: every secret the pool was configured with (the URI's password, decoded and percent-encoded,
 *   `connection.password` and friends) is replaced wherever it appears, in whatever shape a driver
 *   chose to print it.
 */

export const REDACTED = '***';

/**
 * Secrets shorter than this are not replaced literally: a two-letter password would turn every message into
 * asterisks. Such a password still never appears inside a URI (the structural layer covers it).
 */
export const MIN_LITERAL_SECRET_LENGTH = 3;

/** Option keys whose string values are secrets, in `connection` objects of any backend (case-insensitive). */
const SECRET_KEY =
  /^(password|pass|passwd|pwd|passphrase|secret|token|apikey|api_key|sslpassword|sslkey|key)$/i;

/** Query parameters of a URI that carry secrets (e.g. `?password=` which pg and others accept). */
const SECRET_QUERY_PARAM = SECRET_KEY;

/** `scheme://user:password@` anywhere in a text (the password part stops at `@`, whitespace or a delimiter). */
const URI_USERINFO = /([a-z][a-z0-9+.-]*:\/\/)([^\s:@/?#]*):([^\s@/?#]*)@/gi;

/** `password=value` inside a URI's query string or a libpq-style `key=value` string. */
const SECRET_ASSIGNMENT =
  /\b(password|pass|passwd|pwd|passphrase|secret|token|apikey|api_key|sslpassword)=([^&\s'"]+)/gi;

/** Redacts the credentials of URIs (and `password=` assignments) inside any text. */
export function redactUriCredentials(text: string): string {
  return text
    .replace(URI_USERINFO, (_match, scheme: string, user: string) => `${scheme}${user}:${REDACTED}@`)
    .replace(SECRET_ASSIGNMENT, (_match, key: string) => `${key}=${REDACTED}`);
}

/**
 * A URI fit for logs: the password (and secret query parameters) replaced by `***`. An unparseable URI is
 * never echoed, since we cannot tell where its password is.
 */
export function redactUri(uri: string): string {
  const parsed = parseUri(uri);
  if (parsed === undefined) return '<invalid URI>';
  const { url, hosts } = parsed;
  if (url.password !== '') url.password = REDACTED;
  for (const key of [...url.searchParams.keys()]) {
    if (SECRET_QUERY_PARAM.test(key)) url.searchParams.set(key, REDACTED);
  }
  const text = url.toString();
  return hosts === undefined ? text : text.replace(MULTI_HOST_PLACEHOLDER, hosts);
}

/** Stands in for a multi-host list while the rest of the URI is parsed (see parseUri). */
const MULTI_HOST_PLACEHOLDER = 'multi-host.invalid';

/** `scheme://[userinfo@]host1:port1,host2:port2[/path][?query]`: a host list WHATWG URL cannot parse. */
const MULTI_HOST_URI = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*@)?([^/?#@]*,[^/?#@]*)([/?#].*)?$/is;

/**
 * Parses a URI, including the multi-host form MongoDB (`mongodb://a:27017,b:27017/db`) and libpq accept,
 * which `new URL()` rejects when the hosts carry ports. For such a URI, `url`'s host is a placeholder and
 * `hosts` is the list as written; userinfo, path and query parse as usual. undefined when malformed.
 */
export function parseUri(uri: string): { url: URL; hosts?: string } | undefined {
  try {
    return { url: new URL(uri) };
  } catch {
    const match = MULTI_HOST_URI.exec(uri);
    if (match === null) return undefined;
    const [, scheme, userinfo = '', hosts, rest = ''] = match;
    try {
      return { url: new URL(`${scheme}${userinfo}${MULTI_HOST_PLACEHOLDER}${rest}`), hosts };
    } catch {
      return undefined;
    }
  }
}

/** The secrets inside a URI: its password (decoded and as written) and secret query parameters. */
export function secretsOfUri(uri: string | undefined): string[] {
  if (uri === undefined) return [];
  const url = parseUri(uri)?.url;
  if (url === undefined) return [];
  const secrets: string[] = [];
  if (url.password !== '') secrets.push(url.password, safeDecode(url.password));
  for (const [key, value] of url.searchParams) {
    if (SECRET_QUERY_PARAM.test(key) && value !== '') secrets.push(value, encodeURIComponent(value));
  }
  return secrets;
}

/** String values under secret-looking keys of an options object (nested objects included, arrays not). */
export function secretsOfOptions(options: unknown, depth = 0): string[] {
  if (typeof options !== 'object' || options === null || Array.isArray(options) || depth > 4) return [];
  const secrets: string[] = [];
  for (const [key, value] of Object.entries(options)) {
    if (typeof value === 'string' && SECRET_KEY.test(key)) secrets.push(value);
    else if (typeof value === 'object') secrets.push(...secretsOfOptions(value, depth + 1));
  }
  return secrets;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * One pool's redaction: knows its secrets and scrubs text and errors. Secrets can be added later (a
 * password supplied by a function is only known once a connection resolved it).
 */
export class Redactor {
  /** Longest first, so a secret containing another is replaced whole. */
  private secrets: string[] = [];

  constructor(secrets: Iterable<string | undefined> = []) {
    for (const secret of secrets) this.add(secret);
  }

  add(secret: string | undefined): void {
    if (typeof secret !== 'string' || secret.length < MIN_LITERAL_SECRET_LENGTH) return;
    if (this.secrets.includes(secret)) return;
    this.secrets = [...this.secrets, secret].sort((a, b) => b.length - a.length);
  }

  /** True when `text` contains a known secret (used by tests and assertions). */
  leaks(text: string): boolean {
    return this.secrets.some((secret) => text.includes(secret));
  }

  text(text: string): string {
    let result = text;
    for (const secret of this.secrets) {
      if (result.includes(secret)) result = result.split(secret).join(REDACTED);
    }
    return redactUriCredentials(result);
  }

  /**
   * Scrubs an error in place (so its class, `code` and other fields survive) and returns it: `message`,
   * `stack` and every own string property, then its `cause` chain and an AggregateError's `errors`.
   * Other object-valued properties are not walked: they may be live driver objects (a client, a socket)
   * that must not be mutated.
   */
  error<E>(error: E): E {
    this.scrub(error, new Set(), 0);
    return error;
  }

  private scrub(value: unknown, seen: Set<object>, depth: number): void {
    if (typeof value !== 'object' || value === null || seen.has(value) || depth > 8) return;
    seen.add(value);
    const record = value as Record<string, unknown>;
    for (const key of Object.getOwnPropertyNames(value)) {
      let current: unknown;
      try {
        current = record[key];
      } catch {
        continue;
      }
      if (typeof current === 'string') {
        const clean = this.text(current);
        if (clean !== current) setQuietly(value, key, clean);
      } else if (key === 'cause' && typeof current === 'object' && current !== null) {
        this.scrub(current, seen, depth + 1);
      } else if (key === 'errors' && Array.isArray(current)) {
        for (const inner of current) this.scrub(inner, seen, depth + 1);
      }
    }
    // `stack` may be an inherited accessor (V8 installs it as an own property, but be safe).
    const stack = (value as { stack?: unknown }).stack;
    if (typeof stack === 'string') {
      const clean = this.text(stack);
      if (clean !== stack) setQuietly(value, 'stack', clean);
    }
  }
}

function setQuietly(target: object, key: string, value: string): void {
  try {
    const descriptor = Object.getOwnPropertyDescriptor(target, key);
    Object.defineProperty(target, key, {
      value,
      writable: true,
      configurable: true,
      enumerable: descriptor?.enumerable ?? false,
    });
  } catch {
    // A frozen object cannot be scrubbed; nothing better to do than leave it.
  }
}
