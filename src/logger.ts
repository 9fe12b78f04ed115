/**
 * A small pino-style logger (object first, then message) writing to stderr. Injected everywhere
 * that logs; nothing logs through console directly. Never pass secrets in either argument.
 */

/** Log levels, lowest first. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/** The logger interface depad's modules receive. */
export interface Logger {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** True for one of the log levels' names. */
export function isLogLevel(value: string | undefined): value is LogLevel {
  return value !== undefined && Object.hasOwn(ORDER, value);
}

/** Options for `createLogger`. */
export interface LoggerOptions {
  /** Lowest level written (default `warn`; `DEPAD_LOG_LEVEL` overrides in the CLI). */
  level?: LogLevel;
  /** `json` writes one JSON object a line; `text` writes `level: message key=value`. */
  format?: 'json' | 'text';
  /** Where lines go (default process.stderr). */
  write?: (line: string) => void;
}

/** Creates a logger. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const min = ORDER[options.level ?? 'warn'];
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const emit = (level: Exclude<LogLevel, 'silent'>) => (fields: Record<string, unknown>, message: string) => {
    if (ORDER[level] < min) return;
    if (options.format === 'json') {
      write(JSON.stringify({ level, time: new Date().toISOString(), msg: message, ...fields }) + '\n');
    } else {
      // A field with no value is left out (`httpsPort=undefined` says nothing).
      const extra = Object.entries(fields).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
      write(`depad ${level}: ${message}${extra.length ? ` (${extra.join(' ')})` : ''}\n`);
    }
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

/** A logger that drops everything (for tests). */
export const silentLogger: Logger = createLogger({ level: 'silent' });
