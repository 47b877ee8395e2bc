// The images' HEALTHCHECK: `node healthcheck.mjs coordinator|worker`, run inside the container
// beside PID 1, whose own flags say where to look.
//   coordinator: GET /v1/status on its --port answers 200 (with the read token when one is set).
//   worker: PID 1 holds an established TCP connection to the port of its --url.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

const argv = readFileSync('/proc/1/cmdline', 'utf8').split('\0');

function flag(name) {
  const at = argv.findIndex((arg) => arg === name || arg.startsWith(`${name}=`));
  if (at < 0) return undefined;
  return argv[at].includes('=') ? argv[at].slice(name.length + 1) : argv[at + 1];
}

async function coordinatorHealthy() {
  const token = flag('--read-token') ?? process.env.ARBOR_READ_TOKEN;
  const response = await fetch(`http://127.0.0.1:${flag('--port') ?? 7070}/v1/status`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
    signal: AbortSignal.timeout(4000),
  });
  return response.status === 200;
}

function workerHealthy() {
  const url = new URL(flag('--url') ?? '');
  const port = Number(url.port || (url.protocol === 'wss:' ? 443 : 80));
  const sockets = new Set();
  for (const fd of readdirSync('/proc/1/fd')) {
    const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/1/fd/${fd}`));
    if (match) sockets.add(match[1]);
  }
  const ESTABLISHED = '01';
  for (const table of ['/proc/1/net/tcp', '/proc/1/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').trim().split('\n').slice(1)) {
      const [, , remote, state, , , , , , inode] = line.trim().split(/\s+/);
      const remotePort = parseInt(remote.split(':')[1], 16);
      if (state === ESTABLISHED && remotePort === port && sockets.has(inode)) return true;
    }
  }
  return false;
}

const role = process.argv[2];
try {
  const healthy = role === 'coordinator' ? await coordinatorHealthy() : workerHealthy();
  if (!healthy) console.log(`${role}: unhealthy`);
  process.exit(healthy ? 0 : 1);
} catch (error) {
  console.log(`${role}: ${error.message}`);
  process.exit(1);
}
