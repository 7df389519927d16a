// The one pino root logger. Subsystems take `logger.child({ component })`.
// NDJSON to stdout; the object first, the message second.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

let root: Logger = pino({
  level: process.env.XLB_LOG_LEVEL ?? 'info',
  base: { pid: process.pid },
  timestamp: pino.stdTimeFunctions.isoTime,
});

export function logger(): Logger {
  return root;
}

export function setLogLevel(level: LevelWithSilent): void {
  root.level = level;
}

/** Replace the root logger (tests pass a silent one or one writing to a stream). */
export function setLogger(l: Logger): void {
  root = l;
}

export function child(component: string): Logger {
  return root.child({ component });
}
