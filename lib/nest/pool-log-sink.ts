/**
 * Where a pool's log lines go: Nest's Logger with the pool's context (`PoolModule:users`), the user's
 * LoggerService (given the same context as its last argument, Nest's convention), or nowhere (`false`).
 * Every line is scrubbed of URI credentials on its way out, whatever produced it.
 */
import { Logger, type LoggerService } from '@nestjs/common';
import { redactUriCredentials } from '../backends/index.js';

/** The `logger` option: omitted → Nest's Logger; `false` → silent; a LoggerService → that. */
export type PoolLoggerOption = false | LoggerService;

export type PoolLogLevel = 'log' | 'warn' | 'error' | 'debug';

export interface PoolLogSink {
  readonly context: string;
  write(level: PoolLogLevel, message: string): void;
}

/** The context pool lines are logged under. */
export function poolLogContext(poolName: string): string {
  return `PoolModule:${poolName}`;
}

export function createPoolLogSink(poolName: string, option: PoolLoggerOption | undefined): PoolLogSink {
  const context = poolLogContext(poolName);
  if (option === false) return { context, write: () => undefined };
  const target: LoggerService = option ?? new Logger(context);
  const withContext = option !== undefined;
  return {
    context,
    write(level, message) {
      const text = redactUriCredentials(message);
      const write = level === 'debug' ? (target.debug ?? target.log) : target[level];
      if (withContext) write.call(target, text, context);
      else write.call(target, text);
    },
  };
}
