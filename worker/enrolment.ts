/**
 * Open enrolment from the volunteer's side: without a token, ask the coordinator for one
 * (only if it enrols strangers), and keep it in a file of tokens by coordinator so that the
 * same machine comes back as the same volunteer, with its credit.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { ProtocolError } from '../proto/errors.ts';
import { parseEnrolResponse } from '../proto/parse.ts';
import { ROUTES, httpBase } from '../proto/routes.ts';

export const DEFAULT_TOKEN_FILE = join(homedir(), '.arbor', 'volunteer-tokens.json');

async function savedTokens(file: string): Promise<Record<string, string>> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, string>) : {};
  } catch {
    return {};
  }
}

/** The saved or newly issued token for this coordinator; undefined when it does not enrol. */
export async function enrolledToken(
  url: string,
  name: string,
  file: string,
  log: Logger,
): Promise<string | undefined> {
  const base = httpBase(url);
  const tokens = await savedTokens(file);
  const saved = tokens[base];
  if (typeof saved === 'string') return saved;
  const join = await fetch(`${base}/v1/join`).catch(() => undefined);
  if (join?.ok !== true) return undefined;
  const { enrolment } = (await join.json()) as { enrolment?: unknown };
  if (enrolment !== true) return undefined;
  const response = await fetch(`${base}${ROUTES.enrol}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: name.slice(0, 64) }),
  });
  const body = Buffer.from(await response.arrayBuffer());
  if (!response.ok) {
    const reason = body.toString('utf8').slice(0, 300);
    throw new ProtocolError(
      response.status === 429 ? 'RATE_LIMITED' : 'UNAUTHORIZED',
      `enrolment refused: ${reason}`,
    );
  }
  const issued = parseEnrolResponse(body);
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify({ ...tokens, [base]: issued.token }, null, 2)}\n`, { mode: 0o600 });
  await rename(temp, file);
  log.info({ worker: issued.worker_id, token_file: file }, 'enrolled: the token is kept for next time');
  return issued.token;
}
