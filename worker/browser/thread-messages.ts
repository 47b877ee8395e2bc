/** What the volunteer page and its Web Worker say to each other. */

export const BROWSER_BACKENDS = ['webgpu', 'webgl', 'wasm'] as const;
export type BrowserBackend = (typeof BROWSER_BACKENDS)[number];

export function isBrowserBackend(value: unknown): value is BrowserBackend {
  return typeof value === 'string' && (BROWSER_BACKENDS as readonly string[]).includes(value);
}

export type PageCommand =
  | {
      readonly type: 'start';
      readonly name: string;
      readonly token?: string;
      readonly backend?: BrowserBackend;
      /** Share of one core to train with, in (0, 1]. */
      readonly share: number;
    }
  | { readonly type: 'pause' }
  | { readonly type: 'resume' }
  | { readonly type: 'share'; readonly share: number };

export type ThreadReport =
  | {
      readonly type: 'ready';
      readonly backend: BrowserBackend;
      readonly skipped: readonly string[];
      readonly numericsError: number;
      readonly samplesPerSecond: number;
      /** Samples per second of every backend measured. */
      readonly measured: Readonly<Partial<Record<BrowserBackend, number>>>;
    }
  | { readonly type: 'state'; readonly state: VolunteerState; readonly message?: string }
  | { readonly type: 'unit'; readonly unit: string; readonly shard: number }
  | { readonly type: 'progress'; readonly step: number; readonly total: number; readonly loss: number }
  /** The unit's progress is saved in this browser: closing the tab now loses none of it. */
  | { readonly type: 'saved'; readonly samples: number }
  | {
      readonly type: 'result';
      readonly verdict: 'accepted' | 'rejected' | 'lost';
      readonly samples: number;
      /** The volunteer's credit and place and the job's progress, as the coordinator told them. */
      readonly standing?: { credit: number; rank: number; volunteers: number; jobProgress: number };
    }
  | { readonly type: 'log'; readonly level: 'info' | 'warn'; readonly message: string };

export type VolunteerState = 'starting' | 'working' | 'pausing' | 'paused' | 'done' | 'failed';
