import WebSocket from 'ws';
import { ProtocolError } from '../proto/errors.ts';
import type { CoordinatorMessage, WorkerMessage } from '../proto/messages.ts';
import { parseCoordinatorMessage } from '../proto/parse.ts';
import { CoordinatorInbox } from './coordinator-inbox.ts';

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

/** The worker's end of the control socket in Node: frames parsed by proto/, kept in an inbox. */
export class CoordinatorConnection extends CoordinatorInbox {
  private constructor(private readonly ws: WebSocket) {
    super();
    ws.on('message', (raw: Buffer) => {
      let message: CoordinatorMessage;
      try {
        message = parseCoordinatorMessage(raw, MAX_INCOMING_FRAME);
      } catch (error) {
        this.fail(error as Error);
        ws.close(4000, 'bad message');
        return;
      }
      this.deliver(message);
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

  close(): void {
    this.ws.close(1000, 'bye');
  }
}
