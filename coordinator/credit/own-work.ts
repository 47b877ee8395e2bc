/**
 * Credit follows work of one's own: a delta that is a copy, at any scale, of a delta the
 * shard merged recently or of a move between two weights it served earns nothing and costs
 * its sender standing. Measured on honest work (RELIABILITY.md, "Credit that follows work"),
 * two honest deltas of one shard reach a cosine of 0.9986 (the tiny test job hardening: every
 * unit pushes the same way); a copy has 1 at any scale, and 0.9999 with 1.4% noise added.
 */
import type { Likeness } from './credit-history.ts';

/** At or above this |cosine| with a recent merged delta or served move, a delta is a copy. */
export const COPY_COSINE = 0.9999;

/** Why the delta is not work of its own, or undefined. */
export function ownWorkFault(like: Likeness): string | undefined {
  if (like.merged >= COPY_COSINE)
    return `is a copy (cosine ${like.merged.toFixed(4)}, at least ${COPY_COSINE}) of a delta this shard merged recently: it shows no work of its own`;
  if (like.served >= COPY_COSINE)
    return `is a copy (cosine ${like.served.toFixed(4)}, at least ${COPY_COSINE}) of a change between weights this shard served: it shows no work of its own`;
  return undefined;
}
