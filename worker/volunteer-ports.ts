/** What the volunteer loop needs from its platform: Node's ws and disk, or a browser's. */
import type { Static } from '@sinclair/typebox';
import type { Assign, BlobRef, CoordinatorMessage, WorkerMessage } from '../proto/messages.ts';

/** The worker's end of the control socket (ws in Node, the browser's WebSocket in a tab). */
export interface ControlSocket {
  send(message: WorkerMessage): void;
  next(): Promise<CoordinatorMessage>;
  close(): void;
  onCancel: (unitId: string, reason: string) => void;
  /** The coordinator said the job is done (pushed to every socket as it ends). */
  readonly jobDone: boolean;
}

/** Content-addressed blobs, verified against their reference before they are returned. */
export interface BlobSource {
  get(ref: Static<typeof BlobRef>, kind?: 'data' | 'weights'): Promise<Uint8Array>;
  holds(sha256: string): boolean;
}

/** What the loop logs through: pino in Node, the page's status panel in a browser. */
export interface VolunteerLog {
  info(fieldsOrMessage: object | string, message?: string): void;
  warn(fieldsOrMessage: object | string, message?: string): void;
  child(fields: object): VolunteerLog;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** When to train: a volunteer's limits on what the worker takes from their machine (worker/pacer.ts). */
export interface Pacing {
  /** Awaited after every training step. */
  betweenSteps(): Promise<void>;
  /** The unit in training should be handed in now, as a partial result. */
  readonly handIn: boolean;
  /** Awaited before asking for work. */
  beforeWork(signal?: AbortSignal): Promise<void>;
}

/** What a unit trained so far, as it would be uploaded: a partial result to hand in later. */
export interface UnitCheckpoint {
  readonly assign: Assign;
  readonly workerId: string;
  /** The encoded delta (shared/fff/unit-delta.ts). */
  readonly body: Uint8Array;
  readonly metrics: { readonly train_loss: number; readonly samples: number; readonly seconds: number };
}

/**
 * Where a worker that may die mid-unit (a browser tab) keeps its unit's progress: saved every
 * `everyMs` of training, cleared once the unit's result is sent or the unit is handed back.
 */
export interface UnitCheckpoints {
  readonly everyMs: number;
  save(checkpoint: UnitCheckpoint): Promise<void>;
  clear(): Promise<void>;
}
