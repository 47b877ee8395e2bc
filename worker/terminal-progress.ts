import cliProgress from 'cli-progress';

/**
 * On a terminal, one renderer owns stderr: log lines are printed above the progress bar of
 * the unit in training, never through it. `write` is where the logger's lines go.
 */
export class TerminalProgress {
  private readonly bars = new cliProgress.MultiBar(
    {
      format: 'unit {unit} [{bar}] {percentage}% | loss {loss} | ETA {eta}s',
      stream: process.stderr,
      clearOnComplete: true,
      hideCursor: true,
      gracefulExit: false,
    },
    cliProgress.Presets.shades_classic,
  );
  private bar: cliProgress.SingleBar | undefined;
  private unit = '';
  private started = false;

  /** Text for the terminal: straight out before any bar, above the bars after. */
  readonly write = (text: string): void => {
    if (this.started) this.bars.log(text.endsWith('\n') ? text : `${text}\n`);
    else process.stderr.write(text);
  };

  progress(unitId: string, done: number, total: number, loss: number): void {
    const payload = { unit: unitId, loss: Number.isFinite(loss) ? loss.toFixed(4) : '–' };
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
