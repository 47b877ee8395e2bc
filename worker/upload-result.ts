import type { Assign } from '../proto/messages.ts';
import { parseResultResponse } from '../proto/parse.ts';
import { HEADERS, ROUTES } from '../proto/routes.ts';
import { type VolunteerLog, pause } from './volunteer-ports.ts';

export interface ResultUpload {
  readonly base: string;
  readonly token?: string;
  readonly workerId: string;
  readonly assign: Assign;
  readonly body: Uint8Array;
  readonly metrics: { train_loss: number; samples: number; seconds: number };
  readonly log: VolunteerLog;
  readonly signal?: AbortSignal;
}

/** The volunteer's credit and place, and the job's progress, as the coordinator told them. */
export interface VolunteerStanding {
  readonly credit: number;
  readonly rank: number;
  readonly volunteers: number;
  readonly jobProgress: number;
}

export interface UploadAnswer {
  readonly status: 'accepted' | 'rejected' | 'lost';
  /** The model version the accepted delta was merged into. */
  readonly version?: number;
  readonly standing?: VolunteerStanding;
}

/**
 * PUTs a unit's result, retrying server errors and rate limits with capped backoff until a
 * minute past the unit's deadline; a refusal (4xx other than 429) loses the result at once.
 */
export async function uploadResult(upload: ResultUpload): Promise<UploadAnswer> {
  const { assign, log, signal } = upload;
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await fetch(`${upload.base}${ROUTES.unitResult.path(assign.unit_id)}`, {
        method: 'PUT',
        headers: {
          'content-type': 'application/octet-stream',
          [HEADERS.worker]: upload.workerId,
          [HEADERS.lease]: assign.lease_token,
          [HEADERS.metrics]: JSON.stringify(upload.metrics),
          ...(upload.token !== undefined ? { authorization: `Bearer ${upload.token}` } : {}),
        },
        body: new Blob([upload.body as Uint8Array<ArrayBuffer>]),
      });
      const text = await response.text();
      if (response.status === 200 || response.status === 422) {
        const answer = parseResultResponse(text);
        if (answer.status === 'rejected')
          log.warn({ unit: assign.unit_id, reason: answer.reason }, 'result rejected');
        const { credit, rank, volunteers, job_progress: jobProgress } = answer;
        const standing =
          credit !== undefined && rank !== undefined && volunteers !== undefined && jobProgress !== undefined
            ? { standing: { credit, rank, volunteers, jobProgress } }
            : {};
        return answer.status === 'accepted' && answer.version !== undefined
          ? { status: 'accepted', version: answer.version, ...standing }
          : { status: answer.status, ...standing };
      }
      if (response.status < 500 && response.status !== 429) {
        log.warn(
          { unit: assign.unit_id, status: response.status, body: text.slice(0, 300) },
          'result refused',
        );
        return { status: 'lost' };
      }
    } catch (error) {
      log.warn({ unit: assign.unit_id, err: (error as Error).message }, 'upload failed; retrying');
    }
    if (Date.now() > assign.deadline_ms + 60_000 || signal?.aborted) return { status: 'lost' };
    await pause(Math.min(10_000, 250 * 2 ** attempt));
  }
}
