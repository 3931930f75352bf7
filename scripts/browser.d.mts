// Types for browser.mjs, so TypeScript tests can import it (see test/admin/pool-admin-dashboard.spec.ts).

/** Where Debian's `chromium` package puts the browser; CHROMIUM_PATH overrides it. */
export declare const DEFAULT_CHROMIUM_PATH: string;

/** Flags for a quiet, sandbox-free headless run in containers and CI. */
export declare const CHROMIUM_ARGS: readonly string[];

/** Thrown when Chromium is missing and cannot be installed; the message says what to do. */
export declare class BrowserProvisionError extends Error {
  constructor(message: string);
}

/**
 * The path of a runnable Chromium, installing Debian's `chromium` package first when it is missing and this
 * process is root. Throws BrowserProvisionError naming what is missing otherwise.
 */
export declare function ensureChromium(options?: { log?: (line: string) => void }): string;
