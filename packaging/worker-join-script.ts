/**
 * The script behind the one-line join command (proto/dashboard.ts joinCommand): `node -e`
 * fetches it from the coordinator and imports it; it fetches the worker's files (once: they
 * are kept in ~/.arbor/worker/ and checked by SHA-256 on every start) and runs the worker
 * with the volunteer's arguments. Node 20 alone, no npm, no registry.
 */
import { ROUTES } from '../proto/routes.ts';

/** `files` start with the worker's `entry` module; the rest are fetched beside it. */
export function workerJoinScript(
  version: string,
  files: readonly { readonly name: string; readonly sha256: string }[],
  entry: string,
): string {
  const manifest = files.map((file) => ({
    name: file.name,
    sha256: file.sha256,
    path: ROUTES.workerFile.path(file.sha256, file.name),
  }));
  return `// Arbor ${version} volunteer: fetches the worker from its coordinator, checks it, runs it.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const FILES = ${JSON.stringify(manifest)};
const KEPT_VERSIONS = 3;
const args = process.argv.slice(1);
if (args[0] !== undefined && !args[0].startsWith('-')) args.shift();
const at = args.findIndex((arg) => arg === '--url' || arg.startsWith('--url='));
const url = at < 0 ? undefined : args[at].startsWith('--url=') ? args[at].slice(6) : args[at + 1];
if (url === undefined) throw new Error('give the coordinator: --url ws://HOST:PORT');
const base = url.replace(/^ws/, 'http').replace(/\\/+$/, '');
const dir = join(process.env.ARBOR_HOME || join(homedir(), '.arbor'), 'worker', FILES[0].sha256.slice(0, 16));
mkdirSync(dir, { recursive: true });
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
let fetched = 0;
for (const file of FILES) {
  const target = join(dir, file.name);
  if (existsSync(target) && sha256(readFileSync(target)) === file.sha256) continue;
  const response = await fetch(base + file.path);
  if (!response.ok) throw new Error(\`\${base + file.path}: HTTP \${response.status}\`);
  const bytes = Buffer.from(await response.arrayBuffer());
  if (sha256(bytes) !== file.sha256) throw new Error(\`\${file.name} arrived damaged (SHA-256 mismatch); run the command again\`);
  writeFileSync(\`\${target}.part\`, bytes);
  renameSync(\`\${target}.part\`, target);
  fetched += bytes.length;
}
// The worker of other coordinators, or of this one's earlier versions: the three used last stay.
const versions = join(dir, '..');
utimesSync(dir, new Date(), new Date());
readdirSync(versions)
  .filter((name) => /^[0-9a-f]{16}$/.test(name))
  .map((name) => ({ path: join(versions, name), usedMs: statSync(join(versions, name)).mtimeMs }))
  .sort((a, b) => b.usedMs - a.usedMs)
  .slice(KEPT_VERSIONS)
  .forEach(({ path }) => rmSync(path, { recursive: true, force: true }));
process.stderr.write(
  fetched > 0
    ? \`arbor: worker ${version} fetched from \${base} (\${(fetched / 1e6).toFixed(1)} MB) into \${dir}\\n\`
    : \`arbor: worker ${version} from \${dir}\\n\`,
);
process.argv = [process.argv[0], join(dir, ${JSON.stringify(entry)}), ...args];
await import(pathToFileURL(join(dir, ${JSON.stringify(entry)})).href);
`;
}
