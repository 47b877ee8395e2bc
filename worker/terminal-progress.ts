import cliProgress from 'cli-progress';

/**
 * The time left in a unit at its own average pace so far: steadier than a rate over the
 * last few updates, which jumps with every slow step.
 */
export function remainingText(done: number, total: number, elapsedMs: number): string {
  if (done <= 0 || elapsedMs <= 0) return '–';
  const seconds = Math.round(((total - done) * elapsedMs) / done / 1000);
  return seconds >= 60
    ? `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`
    : `${seconds}s`;
}

/**
 * On a terminal, one renderer owns stderr: log lines are printed above the progress bar of
 * the unit in training, never through it. `write` is where the logger's lines go.
 */
export class TerminalProgress {
  private readonly bars = new cliProgress.MultiBar(
    {
      format: 'unit {unit} [{bar}] {percentage}% | loss {loss} | ETA {remaining}',
      stream: process.stderr,
      clearOnComplete: true,
      hideCursor: true,
      gracefulExit: false,
    },
    cliProgress.Presets.shades_classic,
  );
  private bar: cliProgress.SingleBar | undefined;
  private unit = '';
  private unitStartMs = 0;
  private started = false;

  /** Text for the terminal: straight out before any bar, above the bars after. */
  readonly write = (text: string): void => {
    if (this.started) this.bars.log(text.endsWith('\n') ? text : `${text}\n`);
    else process.stderr.write(text);
  };

  progress(unitId: string, done: number, total: number, loss: number, nowMs = performance.now()): void {
    if (this.unit !== unitId) this.unitStartMs = nowMs;
    const payload = {
      unit: unitId,
      loss: Number.isFinite(loss) ? loss.toFixed(4) : '–',
      remaining: remainingText(done, total, nowMs - this.unitStartMs),
    };
    if (this.unit !== unitId) {
      this.unitEnded();
      this.bar = this.bars.create(total, done, payload);
      this.unit = unitId;
      this.started = true;
    } else this.bar?.update(done, payload);
  }

  /** Takes the bar of the finished unit away; logs keep their place above. */
  unitEnded(): void {
    if (this.bar !== undefined) this.bars.remove(this.bar);
    this.bar = undefined;
    this.unit = '';
  }

  /** Flushes what is left and gives the terminal back. */
  stop(): void {
    this.unitEnded();
    if (this.started) this.bars.update();
    this.bars.stop();
    this.started = false;
  }
}
