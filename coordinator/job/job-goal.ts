/**
 * The job owner's goal (`until`): reached when an evaluation's accuracy reaches the target,
 * when training has run for the time given, or when the served model's validation loss has
 * stopped improving once every shard trains the served function (its hard-leaves phase:
 * before, soft training moves that loss about). The end of every shard's schedule ends the
 * job in any case.
 */
import type { EvalRow } from '../store/store.ts';
import type { JobConfig } from './config.ts';

/** A validation loss within this relative margin of the best is no improvement. */
const PLATEAU_MARGIN = 1e-3;

/** Why the job may end now, or undefined while the goal is not met. */
export function goalReached(
  until: JobConfig['until'],
  evals: readonly Pick<EvalRow, 'hardTestAcc' | 'valLoss'>[],
  trainingSeconds: number,
  /** The evaluations a plateau is judged on: those of the served model's own phase. */
  plateauEvals: readonly Pick<EvalRow, 'valLoss'>[] = evals,
): string | undefined {
  const last = evals.at(-1);
  if (until.accuracy !== undefined && last !== undefined && last.hardTestAcc >= until.accuracy)
    return `accuracy ${last.hardTestAcc.toFixed(4)} reached the goal ${until.accuracy}`;
  if (until.seconds !== undefined && trainingSeconds >= until.seconds)
    return `trained for ${Math.round(trainingSeconds)} s, the time given`;
  if (until.plateau !== undefined && plateauEvals.length > until.plateau) {
    const before = plateauEvals.slice(0, -until.plateau);
    const best = Math.min(...before.map((e) => e.valLoss));
    const recent = Math.min(...plateauEvals.slice(-until.plateau).map((e) => e.valLoss));
    if (recent > best * (1 - PLATEAU_MARGIN))
      return `the validation loss has not improved over the last ${until.plateau} evaluations`;
  }
  return undefined;
}

/** `--until` as the job setting: `acc:0.86`, `time:600`, `plateau` or `plateau:N`, comma-separated. */
export function parseUntil(text: string): JobConfig['until'] {
  const until: { accuracy?: number; seconds?: number; plateau?: number } = {};
  for (const part of text.split(',').map((p) => p.trim())) {
    const [kind, value] = part.split(':') as [string, string | undefined];
    const number = Number(value);
    if (kind === 'acc' && value !== undefined && number > 0 && number <= 1) until.accuracy = number;
    else if (kind === 'time' && value !== undefined && number > 0) until.seconds = number;
    else if (kind === 'plateau' && (value === undefined || (Number.isInteger(number) && number >= 1)))
      until.plateau = value === undefined ? DEFAULT_PLATEAU : number;
    else
      throw new RangeError(
        `'${part}' is not a goal: use acc:ACCURACY (0 to 1), time:SECONDS, plateau or plateau:EVALUATIONS`,
      );
  }
  return until;
}

/** Evaluations without improvement that make a plateau when `--until plateau` gives no number. */
export const DEFAULT_PLATEAU = 5;
