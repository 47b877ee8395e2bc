// `node --import ./bench/helpers/exit-report.mjs …` writes, when the process exits, how long
// it ran, its CPU time and its peak resident memory as one JSON line to the file named by ARBOR_EXIT_REPORT.
import { appendFileSync } from 'node:fs';

process.on('exit', () => {
  const file = process.env.ARBOR_EXIT_REPORT;
  if (!file) return;
  const usage = process.resourceUsage();
  const report = {
    ms: performance.now(),
    cpu_ms: (usage.userCPUTime + usage.systemCPUTime) / 1000,
    max_rss_mb: usage.maxRSS / 1024,
  };
  appendFileSync(file, `${JSON.stringify(report)}\n`);
});
