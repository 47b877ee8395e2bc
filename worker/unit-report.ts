/** The line a volunteer reads when a unit's result is answered: verdict, samples, credit, place. */
import type { UnitResult } from '../shared/fff/local-training.ts';
import type { UploadAnswer } from './upload-result.ts';
import type { VolunteerLog } from './volunteer-ports.ts';

export function reportUnit(
  log: VolunteerLog,
  answer: UploadAnswer,
  result: Pick<UnitResult, 'samples' | 'seconds'>,
  partial?: { readonly done: number; readonly of: number },
): void {
  const told = answer.standing;
  const standing = told
    ? {
        credit: told.credit,
        rank: `${told.rank} of ${told.volunteers}`,
        job: `${(told.jobProgress * 100).toFixed(1)}%`,
      }
    : {};
  log.info(
    {
      verdict: answer.status,
      samples: result.samples,
      seconds: Math.round(result.seconds * 10) / 10,
      ...(partial ? { done: `${partial.done}/${partial.of} steps` } : {}),
      ...standing,
    },
    partial ? 'partial unit sent' : 'unit finished',
  );
}
