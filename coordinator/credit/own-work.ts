/**
 * Credit follows work of one's own: a delta that is a copy, at any scale, of a delta the
 * shard merged recently or of a move between two weights it served earns nothing and costs
 * its sender standing. Measured on honest crowds (BENCHMARKS.md, "Credit that follows
 * work"), two honest deltas of one shard reach a cosine of 0.983 (eight units leased from
 * one base at once: Adam's first steps are the signs of nearly one gradient); a copy has 1.
 */
import type { Likeness } from './credit-history.ts';

/** At or above this |cosine| with a recent merged delta or served move, a delta is a copy. */
export const COPY_COSINE = 0.995;

/** Why the delta is not work of its own, or undefined. */
export function ownWorkFault(like: Likeness): string | undefined {
  if (like.merged >= COPY_COSINE)
    return `is a copy (cosine ${like.merged.toFixed(4)}, at least ${COPY_COSINE}) of a delta this shard merged recently: it shows no work of its own`;
  if (like.served >= COPY_COSINE)
    return `is a copy (cosine ${like.served.toFixed(4)}, at least ${COPY_COSINE}) of a change between weights this shard served: it shows no work of its own`;
  return undefined;
}
