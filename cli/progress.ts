import cliProgress from 'cli-progress';
import type { StepReport } from '../shared/fff/trainer.ts';

/** A progress bar on a TTY; nothing otherwise (logs carry the story there). */
export function trainingProgress(enabled: boolean): { onStep: (r: StepReport) => void; stop: () => void } {
  if (!enabled || !process.stderr.isTTY) return { onStep: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    {
      format: 'train [{bar}] {percentage}% | epoch {epoch}/{epochs} {phase} | loss {loss} | ETA {eta}s',
      stream: process.stderr,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    onStep(r) {
      const total = r.totalEpochs * r.stepsPerEpoch;
      const done = r.epoch * r.stepsPerEpoch + r.stepInEpoch;
      const payload = { epoch: r.epoch + 1, epochs: r.totalEpochs, phase: r.phase, loss: r.loss.toFixed(4) };
      if (!started) {
        bar.start(total, done, payload);
        started = true;
      } else bar.update(done, payload);
    },
    stop: () => bar.stop(),
  };
}
