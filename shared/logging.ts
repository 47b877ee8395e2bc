import pino from 'pino';
import pretty from 'pino-pretty';

/**
 * Logs on stderr: JSON lines, or readable lines when stderr is a terminal (override with
 * ARBOR_LOG_FORMAT=json|pretty). `level` comes from the CLI. Tokens are redacted wherever
 * they appear.
 */
export function createLogger(component: string, level: string = logLevel) {
  const format = process.env['ARBOR_LOG_FORMAT'] ?? (process.stderr.isTTY ? 'pretty' : 'json');
  const destination =
    format === 'pretty'
      ? pretty({ destination: 2, sync: true, colorize: process.stderr.isTTY, ignore: 'pid,hostname' })
      : pino.destination(2);
  return pino(
    { name: `arbor-${component}`, level, redact: ['token', '*.token', 'headers.authorization'] },
    destination,
  );
}

let logLevel = 'info';
/** Set once by the CLI entry. */
export function setLogLevel(level: string): void {
  logLevel = level;
}
