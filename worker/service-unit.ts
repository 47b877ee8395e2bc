/**
 * A volunteer's worker as a systemd user service, in one step and without a clone:
 * `… --print-service > ~/.config/systemd/user/arbor-worker.service`. The service runs the
 * join command, so every start fetches the coordinator's current worker (or finds it kept);
 * SIGTERM hands the unit in as a partial result; it runs at the lowest CPU priority.
 */
import { joinScript } from '../proto/dashboard.ts';
import { httpBase } from '../proto/routes.ts';

/** One word of an ExecStart= line: quoted, with systemd's specifiers and variables escaped. */
function systemdWord(word: string): string {
  const escaped = word.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /^[\w@%+=:,./-]+$/.test(word) ? escaped : `"${escaped}"`;
}

export interface ServiceOptions {
  /** ws:// or wss:// address of the coordinator. */
  readonly url: string;
  /** The worker's arguments after --url (never the token). */
  readonly args: readonly string[];
  readonly token?: string;
  /** This Node.js (process.execPath). */
  readonly node: string;
}

export function systemdUnit(options: ServiceOptions): string {
  const command = [
    options.node,
    '-e',
    joinScript(httpBase(options.url)),
    '--',
    '--url',
    options.url,
    ...options.args,
  ];
  return [
    '[Unit]',
    `Description=Arbor volunteer for ${options.url}`,
    'After=network-online.target',
    '',
    '[Service]',
    `ExecStart=${command.map(systemdWord).join(' ')}`,
    ...(options.token !== undefined ? [`Environment=${systemdWord(`ARBOR_TOKEN=${options.token}`)}`] : []),
    'Restart=on-failure',
    'RestartSec=30',
    'KillSignal=SIGTERM',
    'TimeoutStopSec=120',
    'Nice=19',
    '',
    '[Install]',
    'WantedBy=default.target',
    '',
  ].join('\n');
}
