import { createRng } from '../../shared/random.ts';

/** Who shows up in a simulated run, as the job owner describes the crowd. */
export interface VolunteerMix {
  readonly volunteers: number;
  /** Median training speed, samples per virtual second. */
  readonly samplesPerSecond: number;
  /** Fastest over slowest (log-uniform between them, around the median); 1 = all alike. */
  readonly speedSpread: number;
  /** Share of volunteers who vanish (no goodbye, no upload) in the middle of a unit. */
  readonly vanish: number;
  /** Volunteers join at random times over this many virtual seconds (0 = all at once). */
  readonly joinOverSeconds: number;
  /** Chance that a volunteer has somewhere to be: it stops (Ctrl-C) at a random time. */
  readonly leave: number;
  /** Latest such stop or vanishing, in virtual seconds after joining. */
  readonly leaveWithinSeconds: number;
  readonly seed: number;
  /** Volunteers keep their optimizer's state for their next unit of the same shard. */
  readonly carryOptimizer: boolean;
  /** Share of volunteers who cheat: they submit copies and harmful deltas (cheats.ts). */
  readonly cheaters: number;
}

export const DEFAULT_MIX: Omit<VolunteerMix, 'volunteers'> = {
  samplesPerSecond: 1000,
  speedSpread: 1,
  vanish: 0,
  joinOverSeconds: 0,
  leave: 0,
  leaveWithinSeconds: 3600,
  seed: 1,
  carryOptimizer: true,
  cheaters: 0,
};

export interface SimulatedVolunteer {
  readonly name: string;
  readonly samplesPerSecond: number;
  readonly joinMs: number;
  /** When it stops on its own (Ctrl-C: partial progress uploaded), if it does. */
  readonly leaveMs: number;
  /** When it vanishes mid-unit, if it does. */
  readonly vanishMs: number;
  /** Seeded draws for this volunteer's own chances (vanishing, when). */
  readonly rng: () => number;
  /** It submits cheats instead of its own work. */
  readonly cheats: boolean;
}

/** The crowd, the same for the same mix: speeds, arrival and departure times. */
export function volunteersOf(mix: VolunteerMix): SimulatedVolunteer[] {
  const rng = createRng(mix.seed);
  // Drawn apart, so that a crowd with cheaters has the same honest speeds and times as without.
  const cheating = createRng(mix.seed * 104_729 + 17);
  const spread = Math.log(Math.max(1, mix.speedSpread));
  return Array.from({ length: mix.volunteers }, (_, i) => {
    const speed = mix.samplesPerSecond * Math.exp(spread * (rng() - 0.5));
    const joinMs = Math.round(rng() * mix.joinOverSeconds * 1000);
    const leaves = rng() < mix.leave;
    const leaveMs = leaves ? joinMs + Math.round(rng() * mix.leaveWithinSeconds * 1000) : Infinity;
    const vanishes = rng() < mix.vanish;
    const vanishMs = vanishes ? joinMs + Math.round(rng() * mix.leaveWithinSeconds * 1000) : Infinity;
    return {
      name: `sim-${String(i + 1).padStart(4, '0')}`,
      samplesPerSecond: speed,
      joinMs,
      leaveMs,
      vanishMs,
      rng: createRng(mix.seed * 7919 + i + 1),
      cheats: cheating() < mix.cheaters,
    };
  });
}
