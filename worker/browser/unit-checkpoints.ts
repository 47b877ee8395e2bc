/**
 * A tab's unit checkpoint, kept in IndexedDB: the volunteer loop saves what the unit has
 * trained every few seconds. A tab closed mid-unit leaves it behind, and the next visit hands
 * it in as a partial result, for which the coordinator has kept that part of the unit
 * (coordinator/core/saved-progress.ts).
 */
import { type UploadAnswer, uploadResult } from '../upload-result.ts';
import type { UnitCheckpoint, UnitCheckpoints, VolunteerLog } from '../volunteer-ports.ts';

const DATABASE = 'arbor-volunteer';
const STORE = 'checkpoints';
const KEY = 'unit';
/** A save costs a read of the weights and a write of the delta (a few tens of ms at the default job). */
const SAVE_EVERY_MS = 5_000;

let opened: Promise<IDBDatabase> | undefined;

/** The tab's checkpoint database, opened once and kept for the saves every few seconds. */
function database(): Promise<IDBDatabase> {
  return (opened ??= new Promise<IDBDatabase>((resolve, reject) => {
    const opening = indexedDB.open(DATABASE, 1);
    opening.onupgradeneeded = () => opening.result.createObjectStore(STORE);
    opening.onerror = () => {
      opened = undefined;
      reject(opening.error ?? new Error('IndexedDB could not be opened'));
    };
    opening.onsuccess = () => resolve(opening.result);
  }));
}

async function request<T>(
  make: (store: IDBObjectStore) => IDBRequest<T>,
  mode: IDBTransactionMode,
): Promise<T> {
  const db = await database();
  return new Promise((resolve, reject) => {
    const transaction = db.transaction(STORE, mode);
    const pending = make(transaction.objectStore(STORE));
    transaction.oncomplete = () => resolve(pending.result);
    transaction.onerror = transaction.onabort = () =>
      reject(transaction.error ?? new Error('IndexedDB transaction failed'));
  });
}

export class IndexedDbCheckpoints implements UnitCheckpoints {
  readonly everyMs = SAVE_EVERY_MS;

  async save(checkpoint: UnitCheckpoint): Promise<void> {
    await request((store) => store.put(checkpoint, KEY), 'readwrite');
  }

  async clear(): Promise<void> {
    await request((store) => store.delete(KEY), 'readwrite');
  }

  async load(): Promise<UnitCheckpoint | undefined> {
    const found = (await request((store) => store.get(KEY), 'readonly')) as UnitCheckpoint | undefined;
    const valid =
      found !== undefined &&
      typeof found.workerId === 'string' &&
      typeof found.assign?.unit_id === 'string' &&
      found.body instanceof Uint8Array;
    return valid ? found : undefined;
  }
}

/**
 * Hands in the checkpoint a closed tab left behind, once: the answer, with the samples it
 * claimed, or undefined when there was none. A checkpoint refused is dropped all the same.
 */
export async function handInLeftover(
  checkpoints: IndexedDbCheckpoints,
  upload: { readonly base: string; readonly token?: string; readonly log: VolunteerLog },
): Promise<(UploadAnswer & { readonly samples: number; readonly unit: string }) | undefined> {
  const leftover = await checkpoints.load().catch(() => undefined);
  if (leftover === undefined) return undefined;
  const answer = await uploadResult({
    base: upload.base,
    ...(upload.token !== undefined ? { token: upload.token } : {}),
    workerId: leftover.workerId,
    assign: leftover.assign,
    body: leftover.body,
    metrics: leftover.metrics,
    log: upload.log,
  });
  await checkpoints.clear();
  return { ...answer, samples: leftover.metrics.samples, unit: leftover.assign.unit_id };
}
