// `node --import ./bench/helpers/exit-report.mjs …` writes, when the process exits, how long
// it ran and its peak resident memory as one JSON line to the file named by ARBOR_EXIT_REPORT.
import { appendFileSync } from 'node:fs';

process.on('exit', () => {
  const file = process.env.ARBOR_EXIT_REPORT;
  if (!file) return;
  const report = { ms: performance.now(), max_rss_mb: process.resourceUsage().maxRSS / 1024 };
  appendFileSync(file, `${JSON.stringify(report)}\n`);
});
