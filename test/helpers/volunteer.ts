/** A hand-driven volunteer on the real control socket, for tests that play one. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket from 'ws';
import type { Assign, CoordinatorMessage, Welcome } from '../../proto/messages.ts';
import { parseCoordinatorMessage } from '../../proto/parse.ts';
import { PROTOCOL_VERSION } from '../../proto/version.ts';

export const helloFrame = (name: string) => ({
  type: 'hello',
  protocol: PROTOCOL_VERSION,
  name,
  capabilities: { backend: 'wasm', threads: 1, gpu: false, samples_per_s: 1000 },
});

export interface Volunteer {
  readonly ws: WebSocket;
  readonly welcome: Welcome;
  next(): Promise<CoordinatorMessage>;
  requestWork(): Promise<Assign>;
}

/** Connects with `token` (if any), says hello as `name`; `opened` collects the socket for cleanup. */
export async function joinAs(
  wsUrl: string,
  token: string | undefined,
  name: string,
  opened: WebSocket[],
): Promise<Volunteer> {
  const ws = new WebSocket(wsUrl, {
    headers: token !== undefined ? { authorization: `Bearer ${token}` } : {},
  });
  opened.push(ws);
  const frames: CoordinatorMessage[] = [];
  ws.on('message', (raw: Buffer) => frames.push(parseCoordinatorMessage(raw, 1 << 20)));
  const next = async (): Promise<CoordinatorMessage> => {
    while (frames.length === 0) await once(ws, 'message');
    return frames.shift()!;
  };
  await once(ws, 'open');
  ws.send(JSON.stringify(helloFrame(name)));
  const welcome = await next();
  assert.equal(welcome.type, 'welcome', JSON.stringify(welcome));
  return {
    ws,
    welcome: welcome as Welcome,
    next,
    async requestWork() {
      ws.send(JSON.stringify({ type: 'request_work' }));
      const assign = await next();
      assert.equal(assign.type, 'assign', JSON.stringify(assign));
      return assign as Assign;
    },
  };
}

/** A volunteer holding one unit. */
export async function holdLease(
  wsUrl: string,
  token: string | undefined,
  name: string,
  opened: WebSocket[],
): Promise<{ workerId: string; assign: Assign }> {
  const volunteer = await joinAs(wsUrl, token, name, opened);
  return { workerId: volunteer.welcome.worker_id, assign: await volunteer.requestWork() };
}
