/**
 * Time to accuracy: the served model's hard test accuracy at fixed virtual-time intervals,
 * and when it first reached each target. A crowd is judged by how soon it gets there.
 */
export interface CurvePoint {
  readonly t_s: number;
  readonly acc: number;
}

export class AccuracyCurve {
  private readonly points: CurvePoint[] = [];
  private nextMs: number;

  constructor(
    private readonly everyMs: number,
    private readonly measure: () => number,
  ) {
    this.nextMs = everyMs;
  }

  /** Records a point at every interval boundary up to `untilMs` (the model is constant in between). */
  advanceTo(untilMs: number): void {
    if (this.nextMs > untilMs) return;
    const acc = this.measure();
    for (; this.nextMs <= untilMs; this.nextMs += this.everyMs)
      this.points.push({ t_s: this.nextMs / 1000, acc });
  }

  /** The last point: the final model at the end of the job. */
  finish(endMs: number, finalAcc: number): readonly CurvePoint[] {
    this.points.push({ t_s: endMs / 1000, acc: finalAcc });
    return this.points;
  }
}

/** Per target, the first time the curve reached it (seconds), or null. */
export function timeToAccuracy(
  curve: readonly CurvePoint[],
  targets: readonly number[],
): Record<string, number | null> {
  return Object.fromEntries(
    targets.map((target) => [String(target), curve.find((p) => p.acc >= target)?.t_s ?? null]),
  );
}
