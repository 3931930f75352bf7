// Types for services.mjs, so TypeScript tests can import it (see test/support/private-servers.ts).

export type ServiceName = 'postgres' | 'redis' | 'mongodb';

export declare const FERRETDB_VERSION: string;
export declare const ALL_SERVICES: readonly ServiceName[];

export declare class ServiceError extends Error {
  constructor(message: string);
}

export interface ProvisionedServices {
  /** Variables for the test process: DATABASE_URL, REDIS_URL, MONGODB_URI, NESTJS_POOL_TEST_SERVICES. */
  env: Record<string, string>;
  /** Stops whatever provisionServices started; idempotent. */
  stop(): Promise<void>;
}

/** A throw-away server owned by one test file. */
export interface PrivateServer {
  host: string;
  port: number;
  /** Connection URL for the matching client library. */
  url: string;
  /** Wall time of the first start (including initdb etc.). */
  startupMs: number;
  /** Whether the server process is alive. */
  isRunning(): boolean;
  /**
   * Sends a signal to the main server process without waiting, e.g. SIGSTOP / SIGCONT to freeze a server
   * while its TCP connections stay open (stop() and restart() continue a stopped server).
   */
  signal(signal: string): void;
  /** Sends a signal (default SIGKILL: a crash) and waits for the process to exit. */
  kill(signal?: string): Promise<void>;
  /** Stops the server gracefully (keeping its data) and starts it again on the same port. */
  restart(): Promise<void>;
  /** Stops the server and deletes its files; idempotent. */
  stop(): Promise<void>;
}

export type PgProbeResult =
  { state: 'ready' } | { state: 'error'; code: string; message: string } | { state: 'down'; message: string };

export declare function cacheDir(): string;
export declare function scratchDir(): string;
export declare function stopAll(): Promise<void>;
export declare function findExecutable(name: string, extraDirs?: string[]): string | undefined;
export declare function findFreePort(host?: string): Promise<number>;
export declare function canConnect(port: number, host?: string, timeoutMs?: number): Promise<boolean>;
export declare function waitForPort(
  port: number,
  options?: { host?: string; timeoutMs?: number; intervalMs?: number; isAlive?: () => boolean },
): Promise<void>;
export declare function redisPing(port?: number, host?: string): Promise<string | undefined>;
export declare function pgProbe(options?: {
  host?: string;
  port?: number;
  user?: string;
  database?: string;
  timeoutMs?: number;
}): Promise<PgProbeResult>;
export declare function startPrivateRedis(): Promise<PrivateServer>;
export declare function findPostgresBinDir(): string | undefined;
export declare function startPrivatePostgres(): Promise<PrivateServer>;
export declare function ensureFerretDB(): Promise<string>;
export declare function startPrivateFerretDB(): Promise<PrivateServer>;
export declare function provisionServices(options?: {
  need?: readonly ServiceName[];
}): Promise<ProvisionedServices>;
export declare function parseServiceList(text: string | undefined): ServiceName[];
