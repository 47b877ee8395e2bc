import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Store, TokenRow } from '../store/store.ts';

/**
 * Who is on the other end. A volunteer token names one volunteer, whose worker id follows
 * from the token and never from the name it gives. The job's shared token (`--token`) and
 * an open coordinator (no shared token, no volunteer tokens) identify workers by name.
 */
export type Identity =
  | { readonly kind: 'open' }
  | { readonly kind: 'shared' }
  | { readonly kind: 'volunteer'; readonly tokenId: string; readonly name: string };

const hashOf = (token: string): string => createHash('sha256').update(token).digest('hex');

const sameSecret = (given: string, expected: string): boolean => {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
};

/** `arb_<id>_<secret>`: the id is public (it names the worker), the secret is shown once. */
export function issueVolunteerToken(
  store: Store,
  name: string,
  now: number,
): { token: string; row: TokenRow } {
  const id = randomBytes(6).toString('hex');
  const token = `arb_${id}_${randomBytes(24).toString('base64url')}`;
  const row = { id, hash: hashOf(token), name, createdMs: now };
  store.createToken(row);
  return { token, row: { ...row, revokedMs: null } };
}

/**
 * The identity a bearer token gives, or undefined when it gives none here. A coordinator
 * is open (no token needed) only with no shared token, no volunteer token and enrolment closed.
 */
export function identify(
  store: Store,
  access: { readonly sharedToken?: string | undefined; readonly enrolment?: boolean | undefined },
  bearer: string | undefined,
): Identity | undefined {
  const { sharedToken } = access;
  const open = sharedToken === undefined && access.enrolment !== true && !store.hasActiveTokens();
  if (bearer !== undefined) {
    if (sharedToken !== undefined && sameSecret(bearer, sharedToken)) return { kind: 'shared' };
    const row = store.tokenByHash(hashOf(bearer));
    if (row !== undefined && row.revokedMs === null)
      return { kind: 'volunteer', tokenId: row.id, name: row.name };
  }
  return open ? { kind: 'open' } : undefined;
}

/** The worker id an identity owns (`w-<token id>`), or undefined when ids follow names. */
export const ownedWorkerId = (identity: Identity): { id: string; tokenId: string } | undefined =>
  identity.kind === 'volunteer' ? { id: `w-${identity.tokenId}`, tokenId: identity.tokenId } : undefined;

/** Compares a secret in constant time; false when no secret is configured. */
export const matchesSecret = (given: string | undefined, expected: string | undefined): boolean =>
  given !== undefined && expected !== undefined && sameSecret(given, expected);
