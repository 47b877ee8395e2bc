import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCRIPT =
  "import { createLogger } from './shared/logging.ts';" +
  "createLogger('t').info({ token: 'sekrit', worker: { token: 'also' }, unit: 'r0000-s0001' }, 'leased');";

async function logLine(format: string): Promise<string> {
  const { stderr } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SCRIPT], {
    env: { ...process.env, ARBOR_LOG_FORMAT: format },
  });
  return stderr;
}

void describe('logs', () => {
  void it('are JSON lines with ids and redacted tokens when not on a terminal', async () => {
    const line = JSON.parse(await logLine('json')) as Record<string, unknown>;
    assert.equal(line['msg'], 'leased');
    assert.equal(line['unit'], 'r0000-s0001');
    assert.equal(line['token'], '[Redacted]');
    assert.deepEqual(line['worker'], { token: '[Redacted]' });
  });

  void it('are readable lines in the pretty format, still without the token', async () => {
    const text = await logLine('pretty');
    assert.match(text, /INFO \(arbor-t\): leased/);
    assert.doesNotMatch(text, /sekrit|also/);
  });
});
