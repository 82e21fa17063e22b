import { accessSync, constants, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { CorralError } from '../errors.js';

interface SdNotifyAddon {
  ready(): void;
  stopping(pid?: number): void;
  watchdog(): void;
  sendState(state: string): void;
}

/**
 * systemd's notification protocol (sd_notify(3)) through the sd-notify addon. When
 * NOTIFY_SOCKET is unset every call is a no-op. When it is set but messages cannot be
 * sent, the constructor throws, so systemd never waits for a READY=1 that cannot come.
 */
export class Notifier {
  readonly enabled: boolean;
  /** Half of WATCHDOG_USEC in ms when systemd expects pings from this process, else 0. */
  readonly watchdogIntervalMs: number;
  private readonly addon: SdNotifyAddon | undefined;
  private lastStatus = '';

  constructor(env: NodeJS.ProcessEnv, loadAddon: () => SdNotifyAddon = defaultAddon) {
    const socket = env.NOTIFY_SOCKET;
    this.enabled = socket !== undefined && socket !== '';
    this.watchdogIntervalMs = watchdogInterval(env);
    if (!this.enabled) return;
    checkSocket(socket!);
    try {
      this.addon = loadAddon();
    } catch (err) {
      throw new CorralError(
        'E_NOTIFY',
        `NOTIFY_SOCKET is set (systemd Type=notify) but the sd-notify addon cannot be loaded (${(err as Error).message.split('\n')[0]}); ` +
          'install libsystemd-dev, python3, make and g++, then run `npm rebuild sd-notify` in the corral install; or run the unit with Type=simple',
      );
    }
  }

  ready(status?: string): void {
    if (status !== undefined) this.status(status);
    this.send('READY=1');
  }

  /** RELOADING=1 with the monotonic timestamp systemd 253+ (Type=notify-reload) expects. */
  reloading(): void {
    const usec = process.hrtime.bigint() / 1000n;
    this.send(`RELOADING=1\nMONOTONIC_USEC=${usec}`);
  }

  stopping(): void {
    this.send('STOPPING=1');
  }

  watchdog(): void {
    if (this.watchdogIntervalMs > 0) this.send('WATCHDOG=1');
  }

  status(line: string): void {
    if (line === this.lastStatus) return;
    this.lastStatus = line;
    this.send(`STATUS=${line.replace(/\n/g, ' ')}`);
  }

  private send(state: string): void {
    if (!this.addon) return;
    this.addon.sendState(state + '\n');
  }
}

function defaultAddon(): SdNotifyAddon {
  const require = createRequire(import.meta.url);
  return require('sd-notify') as SdNotifyAddon;
}

function watchdogInterval(env: NodeJS.ProcessEnv): number {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return 0;
  if (env.WATCHDOG_PID && env.WATCHDOG_PID !== String(process.pid)) return 0;
  return Math.max(1, Math.floor(usec / 2000));
}

function checkSocket(path: string): void {
  if (path.startsWith('@')) return; // abstract namespace: nothing on disk to check
  let ok = false;
  try {
    ok = statSync(path).isSocket();
    accessSync(path, constants.W_OK);
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new CorralError('E_NOTIFY', `NOTIFY_SOCKET=${path} is not a writable socket; unset NOTIFY_SOCKET when not running under systemd, or fix the unit (Type=notify, NotifyAccess=main)`);
  }
}
