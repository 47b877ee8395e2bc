import { spawn } from 'node:child_process';
import { once } from 'node:events';

/**
 * Runs one command line with bash from the current directory, as an operator would type it;
 * resolves with its stdout, rejects with the tail of its output when it fails or overruns
 * (then its whole process group is killed). Each command and its duration go to stderr.
 */
export async function shell(command: string, timeoutMs: number): Promise<string> {
  const started = Date.now();
  const child = spawn('bash', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    output += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const killGroup = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const timer = setTimeout(killGroup, timeoutMs);
  process.once('exit', killGroup);
  try {
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    process.stderr.write(`[shell] ${seconds} s  ${command}\n`);
    if (code !== 0)
      throw new Error(
        `'${command}' ${signal ? `was killed (${signal}) after ${seconds} s` : `exited ${code}`}:\n${output.slice(-4000)}`,
      );
    return stdout;
  } finally {
    clearTimeout(timer);
    process.removeListener('exit', killGroup);
  }
}
