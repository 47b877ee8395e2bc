import pino from 'pino';
import pretty, { prettyFactory } from 'pino-pretty';

export type LogFormat = 'json' | 'pretty';

/**
 * Logs on stderr: JSON lines, or readable lines when stderr is a terminal (override with
 * ARBOR_LOG_FORMAT=json|pretty; `format` overrides both). `level` defaults to ARBOR_LOG_LEVEL (else info); `sink`
 * takes each line instead of stderr, synchronously (the worker's terminal renderer). Tokens
 * are redacted wherever they appear. Readable lines off a terminal are one line each.
 */
export function createLogger(
  component: string,
  level: string = process.env['ARBOR_LOG_LEVEL'] ?? 'info',
  sink?: (text: string) => void,
  format: string = process.env['ARBOR_LOG_FORMAT'] ?? (process.stderr.isTTY ? 'pretty' : 'json'),
) {
  const prettyOptions = {
    colorize: process.stderr.isTTY,
    ignore: 'pid,hostname',
    singleLine: !process.stderr.isTTY,
  };
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
