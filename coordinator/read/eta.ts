/** How far back the training rate is measured for the time-left estimate. */
export const ETA_WINDOW_MS = 5 * 60_000;

export interface RecentProgress {
  readonly results: number;
  readonly samples: number;
  readonly firstMs: number | null;
}

/**
 * Seconds left at the rate of the last window, or null when there is no such rate: fewer
 * than two results in the window (nobody is making progress now, or it has only begun).
 */
export function etaSeconds(recent: RecentProgress, remainingSamples: number, nowMs: number): number | null {
  if (remainingSamples <= 0) return 0;
  if (recent.results < 2 || recent.firstMs === null) return null;
  const elapsedMs = Math.max(1, nowMs - recent.firstMs);
  const perMs = recent.samples / elapsedMs;
  return perMs > 0 ? remainingSamples / perMs / 1000 : null;
}
