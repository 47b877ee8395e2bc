/**
 * The worker on a real terminal (a pseudo-terminal from script(1)): its progress bar and
 * its readable logs share the screen without overwriting each other.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { type SmallCoordinator, startSmallCoordinator } from '../helpers/small-job.ts';

let small: SmallCoordinator;
before(async () => {
  small = await startSmallCoordinator();
});
after(() => small?.close());

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]/g;

/** What a person sees line by line: escape codes gone, each carriage return starts over. */
function screenLines(raw: string): string[] {
  return raw
    .replace(/\x1b\[\d*G/g, '\r')
    .replace(ANSI, '')
    .split('\n')
    .flatMap((line) => line.split('\r'))
    .map((line) => line.trimEnd())
    .filter((line) => line !== '');
}

void describe('arbor worker on a terminal', { timeout: 120_000 }, () => {
  void it('prints whole log lines above the progress bar and a readable summary', async () => {
    const ws = small.coordinator.url.replace(/^http/, 'ws');
    const command = `${process.execPath} bin/arbor.js worker --url ${ws} --name tty --max-units 2 --backend wasm`;
    const env: NodeJS.ProcessEnv = { ...process.env, COLUMNS: '120', LINES: '40', TERM: 'xterm' };
    delete env['ARBOR_LOG_FORMAT'];
    const child = spawn('script', ['-qfec', command, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let raw = '';
    child.stdout.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, raw.slice(-2000));

    const lines = screenLines(raw);
    const logLines = lines.filter((line) => /\b(INFO|WARN|ERROR)\b/.test(line));
    const barLines = lines.filter((line) => /^unit s\d{4}-c\d{6} \[/.test(line));
    assert.ok(barLines.length > 0, `a progress bar was drawn:\n${lines.join('\n')}`);
    for (const line of logLines)
      assert.doesNotMatch(line, /[░█]|\bunit s\d{4}-c\d{6} \[/, `a log line drawn through the bar: ${line}`);
    assert.equal(logLines.filter((line) => /unit finished/.test(line)).length, 2, lines.join('\n'));
    assert.ok(
      logLines.some((line) => /worker finished/.test(line)),
      lines.join('\n'),
    );
    const finished = lines.findIndex((line) => /worker finished/.test(line));
    const summary = lines.slice(finished + 1, finished + 6);
    assert.deepEqual(
      summary.map((line) => line.trim().split(':')[0]),
      ['units', 'accepted', 'rejected', 'samples', 'end'],
      `the summary, one field a line:\n${lines.join('\n')}`,
    );
    assert.match(summary[1]!, /^\s+accepted: 2$/);
  });
});
