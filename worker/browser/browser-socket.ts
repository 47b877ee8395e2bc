import type { CoordinatorMessage, WorkerMessage } from '../../proto/messages.ts';
import { parseCoordinatorMessage } from '../../proto/parse.ts';
import { socketProtocols } from '../../proto/socket-token.ts';
import { CoordinatorInbox } from '../coordinator-inbox.ts';
import type { ControlSocket } from '../volunteer-ports.ts';

const MAX_INCOMING_FRAME = 1024 * 1024;

/** The control socket over the browser's WebSocket; the token travels as a subprotocol. */
export class BrowserSocket extends CoordinatorInbox implements ControlSocket {
  private constructor(private readonly ws: WebSocket) {
    super();
    ws.addEventListener('message', (event: MessageEvent) => {
      let message: CoordinatorMessage;
      try {
        message = parseCoordinatorMessage(String(event.data), MAX_INCOMING_FRAME);
      } catch (error) {
        this.fail(error as Error);
        ws.close(4000, 'bad message');
        return;
      }
      this.deliver(message);
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

  close(): void {
    this.ws.close(1000, 'bye');
  }
}
