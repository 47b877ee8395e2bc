import pino from 'pino';
import pretty, { prettyFactory } from 'pino-pretty';

/**
 * Logs on stderr: JSON lines, or readable lines when stderr is a terminal (override with
 * ARBOR_LOG_FORMAT=json|pretty). `level` comes from the CLI; `sink` takes each line instead
 * of stderr, synchronously (the worker's terminal renderer). Tokens are redacted wherever they appear.
 */
export function createLogger(component: string, level: string = logLevel, sink?: (text: string) => void) {
  const format = process.env['ARBOR_LOG_FORMAT'] ?? (process.stderr.isTTY ? 'pretty' : 'json');
  const prettyOptions = { colorize: process.stderr.isTTY, ignore: 'pid,hostname' };
  let destination: pino.DestinationStream;
  if (sink !== undefined) {
    const prettify = format === 'pretty' ? prettyFactory(prettyOptions) : (line: string) => line;
    destination = { write: (line: string) => sink(prettify(line)) };
  } else
    destination =
      format === 'pretty' ? pretty({ destination: 2, sync: true, ...prettyOptions }) : pino.destination(2);
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
