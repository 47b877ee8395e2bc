/** What the browser lab's Node side asks its Web Worker, and the answers. */
export type LabTask =
  /** `flags`: tfjs environment flags set first (e.g. WEBGL_FORCE_F16_TEXTURES). */
  | { readonly task: 'probe'; readonly flags?: Readonly<Record<string, boolean | number>> }
  | {
      readonly task: 'unit';
      /** An Arbor FFF checkpoint and a shard data blob, as a worker would fetch them (base64). */
      readonly base: string;
      readonly data: string;
      readonly epochs: number;
      readonly batch: number;
      readonly seed: number;
    }
  | {
      readonly task: 'training';
      readonly depth: number;
      readonly leaf: number;
      readonly batch: number;
      readonly steps: number;
    };

export type LabRequest = LabTask & { readonly id: number; readonly backend: string };

export type LabAnswer =
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string };

export interface UnitRun {
  /** The encoded delta, the result body a worker would upload (base64). */
  readonly delta: string;
  readonly samples: number;
  readonly seconds: number;
}
