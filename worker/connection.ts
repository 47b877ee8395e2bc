import WebSocket from 'ws';
import { ProtocolError } from '../proto/errors.ts';
import type { CoordinatorMessage, WorkerMessage } from '../proto/messages.ts';
import { parseCoordinatorMessage } from '../proto/parse.ts';

const MAX_INCOMING_FRAME = 1024 * 1024;

export class ConnectionClosed extends Error {
  override readonly name = 'ConnectionClosed';
  constructor(
    readonly code: number,
    readonly reason: string,
  ) {
    super(`connection closed (${code}${reason ? ` ${reason}` : ''})`);
  }
}

/**
 * The worker's end of the control socket: frames parsed by proto/, `cancel` delivered to a
 * listener at once (training is running then), every other message queued for `next()`.
 */
export class CoordinatorConnection {
  private readonly queue: CoordinatorMessage[] = [];
  private waiter: { resolve: (m: CoordinatorMessage) => void; reject: (e: Error) => void } | undefined;
  private closed: Error | undefined;
  onCancel: (unitId: string, reason: string) => void = () => undefined;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (raw: Buffer) => {
      let message: CoordinatorMessage;
      try {
        message = parseCoordinatorMessage(raw, MAX_INCOMING_FRAME);
      } catch (error) {
        this.fail(error as Error);
        ws.close(4000, 'bad message');
        return;
      }
      if (message.type === 'cancel') this.onCancel(message.unit_id, message.reason);
      else if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w.resolve(message);
      } else this.queue.push(message);
    });
    ws.on('close', (code, reason) => this.fail(new ConnectionClosed(code, reason.toString())));
    ws.on('error', (error) => this.fail(error));
  }

  static open(url: string, token?: string, timeoutMs = 10_000): Promise<CoordinatorConnection> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, {
        headers: token !== undefined ? { authorization: `Bearer ${token}` } : {},
        handshakeTimeout: timeoutMs,
        maxPayload: MAX_INCOMING_FRAME,
      });
      ws.once('open', () => resolve(new CoordinatorConnection(ws)));
      ws.once('error', reject);
      ws.once('unexpected-response', (_request, response) => {
        reject(
          response.statusCode === 401
            ? new ProtocolError(
                'UNAUTHORIZED',
                token === undefined
                  ? 'this coordinator requires a token: pass --token or set ARBOR_TOKEN'
                  : 'the coordinator refused this token (check --token or ARBOR_TOKEN)',
              )
            : new Error(`upgrade refused: HTTP ${response.statusCode}`),
        );
        ws.terminate();
      });
    });
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(message: WorkerMessage): void {
    if (this.isOpen) this.ws.send(JSON.stringify(message));
  }

  next(): Promise<CoordinatorMessage> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  close(): void {
    this.ws.close(1000, 'bye');
  }

  private fail(error: Error): void {
    this.closed ??= error;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(this.closed);
  }
}
