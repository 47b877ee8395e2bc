import type { CoordinatorMessage, WorkerMessage } from '../../proto/messages.ts';
import { parseCoordinatorMessage } from '../../proto/parse.ts';
import { socketProtocols } from '../../proto/socket-token.ts';
import { CoordinatorInbox } from '../coordinator-inbox.ts';
import type { ControlSocket } from '../volunteer-ports.ts';

const MAX_INCOMING_FRAME = 1024 * 1024;

/** The control socket over the browser's WebSocket; the token travels as a subprotocol. */
export class BrowserSocket implements ControlSocket {
  private readonly inbox = new CoordinatorInbox();

  private constructor(private readonly ws: WebSocket) {
    ws.addEventListener('message', (event: MessageEvent) => {
      let message: CoordinatorMessage;
      try {
        message = parseCoordinatorMessage(String(event.data), MAX_INCOMING_FRAME);
      } catch (error) {
        this.fail(error as Error);
        ws.close(4000, 'bad message');
        return;
      }
      this.inbox.deliver(message);
    });
    ws.addEventListener('close', (event: CloseEvent) =>
      this.fail(new Error(`connection closed (${event.code}${event.reason ? ` ${event.reason}` : ''})`)),
    );
  }

  static open(url: string, token?: string, timeoutMs = 10_000): Promise<BrowserSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, socketProtocols(token));
      const timer = setTimeout(() => {
        ws.close();
        reject(new Error(`no answer from ${url} in ${timeoutMs / 1000} s`));
      }, timeoutMs);
      ws.addEventListener('open', () => {
        clearTimeout(timer);
        resolve(new BrowserSocket(ws));
      });
      // A browser hides the upgrade's status: a refused token and a dead server look alike.
      ws.addEventListener('error', () => {
        clearTimeout(timer);
        reject(
          new Error(
            token === undefined
              ? 'cannot connect: the coordinator is unreachable or requires a token'
              : 'cannot connect: the coordinator is unreachable or refused this token',
          ),
        );
      });
    });
  }

  send(message: WorkerMessage): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  get onCancel(): (unitId: string, reason: string) => void {
    return this.inbox.onCancel;
  }

  set onCancel(listener: (unitId: string, reason: string) => void) {
    this.inbox.onCancel = listener;
  }

  next(): Promise<CoordinatorMessage> {
    return this.inbox.next();
  }

  close(): void {
    this.ws.close(1000, 'bye');
  }

  private fail(error: Error): void {
    this.inbox.fail(error);
  }
}
