/**
 * The master's side of TLS: which listeners serve it, the pair the workers serve now, and
 * swapping a new pair in place. A pair is checked before it goes anywhere (pair.ts): a good
 * one is sent to every worker over its channel (`{ t: 'tls' }`, never in the environment),
 * which calls setSecureContext; a bad one is refused and logged while the current one serves.
 * Workers get the pair from the master only, so a worker started after a refused change still
 * serves the last good pair.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { ResolvedConfig } from '../config/settings.js';
import { CorralError } from '../errors.js';
import type { MasterMessage } from '../ipc/messages.js';
import type { Listener } from '../listeners/acquire.js';
import type { Logger } from '../logging/logger.js';
import { dateWarning, describePair, loadPair, tlsFiles, type TlsFiles, type TlsPair } from './pair.js';

/** Changes to the files closer together than this are one change (a deploy hook renames several). */
const CHANGE_SETTLE_MS = 500;

/** The name of a socket systemd passes (FileDescriptorName=) that serves TLS when tls-bind is set. */
const TLS_SOCKET_NAME = 'tls';

/**
 * Marks the listeners that serve TLS. Own binds: the last `tlsBinds` of them (tls-bind comes
 * after bind), or every one when tls-bind is empty. Passed sockets: those named `tls` when
 * tls-bind is set, every one when it is not. Nothing when TLS is off.
 */
export function markTls(listeners: Listener[], tlsOn: boolean, tlsBinds: number): void {
  const passed = listeners.some((l) => l.name !== undefined);
  listeners.forEach((l, i) => {
    if (!tlsOn) l.tls = false;
    else if (passed) l.tls = tlsBinds === 0 || l.name === TLS_SOCKET_NAME;
    else l.tls = tlsBinds === 0 || i >= listeners.length - tlsBinds;
  });
}

/** What /metrics shows of the pair served now. */
export interface TlsFigures {
  listeners: string[];
  subject: string;
  serial: string;
  notAfter: number;
  swaps: { ok: number; refused: number };
}

export class TlsKeeper {
  private files: TlsFiles | undefined;
  private pair: TlsPair | undefined;
  private watchers: FSWatcher[] = [];
  private settle: NodeJS.Timeout | undefined;
  private tell: ((msg: MasterMessage) => void) | undefined;
  private readonly swaps = { ok: 0, refused: 0 };

  constructor(private readonly listeners: Listener[], private readonly log: Logger, private readonly cwd: string) {}

  /** Any listener serves TLS. */
  get on(): boolean {
    return this.listeners.some((l) => l.tls);
  }

  /**
   * Checks the pair the configuration names and makes it the one served (at start, and at a
   * HUP before the new generation starts; running workers are told at once). Throws the
   * configuration error otherwise: at start the master exits 78, at a HUP the reload fails.
   */
  configure(cfg: ResolvedConfig): void {
    const files = tlsFiles(cfg, this.cwd);
    if (!this.on) {
      if (files) this.log.warn('tls-cert is set but no listener serves TLS: TLS is turned on at start, not by a reload (restart corral)');
      return;
    }
    if (!files) throw new CorralError('E_CONFIG_VALUE', 'tls-cert and tls-key were removed but listeners serve TLS: turning TLS off needs a restart');
    const pair = loadPair(files);
    const changed = !this.pair || !samePair(this.pair, pair);
    const moved = !this.files || JSON.stringify(this.files) !== JSON.stringify(files);
    this.files = files;
    if (changed) this.accept(pair, this.pair ? 'reload' : 'start');
    if (moved && this.tell) this.watchFiles();
  }

  /** Starts watching the files; `tell` sends a message to every worker. */
  start(tell: (msg: MasterMessage) => void): void {
    this.tell = tell;
    if (this.on) this.watchFiles();
  }

  /** The message that gives a worker the pair served now (undefined when TLS is off). */
  message(): MasterMessage | undefined {
    const p = this.pair;
    return p && { t: 'tls', cert: p.cert, key: p.key, ...(p.clientCa !== undefined ? { ca: p.clientCa } : {}) };
  }

  figures(): TlsFigures | undefined {
    const p = this.pair;
    if (!p) return undefined;
    return { listeners: this.listeners.filter((l) => l.tls).map((l) => l.label), subject: p.subject, serial: p.serial, notAfter: p.notAfter.getTime() / 1000, swaps: { ...this.swaps } };
  }

  close(): void {
    clearTimeout(this.settle);
    for (const w of this.watchers) w.close();
    this.watchers = [];
  }

  /**
   * Reads the files again after a change and swaps a good new pair in; a bad one is refused
   * with its error, the current pair serving on. Unchanged contents: nothing happens.
   */
  recheck(): void {
    const files = this.files;
    if (!files) return;
    let pair: TlsPair;
    try {
      pair = loadPair(files);
    } catch (err) {
      this.swaps.refused++;
      const current = this.pair ? ` (${describePair(this.pair)})` : '';
      this.log.error({ code: (err as CorralError).code }, `TLS files changed but the new pair is refused; the current certificate${current} keeps serving: ${(err as Error).message}`);
      return;
    }
    if (this.pair && samePair(this.pair, pair)) return;
    this.accept(pair, 'file change');
  }

  private accept(pair: TlsPair, why: 'start' | 'reload' | 'file change'): void {
    this.pair = pair;
    const msg = this.message()!;
    if (why !== 'start') {
      this.swaps.ok++;
      this.tell?.(msg);
      this.log.info(`TLS certificate swapped in place (${why}): ${describePair(pair)}; new handshakes use it, open connections keep theirs`);
    } else {
      this.log.info(`TLS on ${this.listeners.filter((l) => l.tls).map((l) => l.label).join(', ')}: ${describePair(pair)}`);
    }
    const warning = dateWarning(pair);
    if (warning) this.log.warn(warning);
  }

  /**
   * Watches the directories of the files, not the files: a deploy hook (certbot) or a
   * Kubernetes secret replaces them by rename, which a watch on the old file never sees.
   * Any change there is read again once the changes settle; identical contents are ignored.
   */
  private watchFiles(): void {
    this.close();
    const f = this.files!;
    const dirs = new Set([f.cert, f.key, ...(f.clientCa ? [f.clientCa] : [])].map((p) => dirname(p)));
    for (const dir of dirs) {
      try {
        const w = watch(dir, { persistent: false }, () => this.changed());
        w.on('error', (err) => this.log.warn({ err }, `cannot watch ${dir} for new TLS files any more; a HUP still swaps them`));
        this.watchers.push(w);
      } catch (err) {
        this.log.warn({ err }, `cannot watch ${dir} for new TLS files (${(err as NodeJS.ErrnoException).code}); a HUP swaps them: \`systemctl reload\``);
      }
    }
    this.log.debug(`watching ${[...dirs].join(', ')} for new TLS files (${[f.cert, f.key].map((p) => basename(p)).join(', ')})`);
  }

  private changed(): void {
    clearTimeout(this.settle);
    this.settle = setTimeout(() => this.recheck(), CHANGE_SETTLE_MS);
    this.settle.unref();
  }
}

function samePair(a: TlsPair, b: TlsPair): boolean {
  return a.cert === b.cert && a.key === b.key && a.clientCa === b.clientCa;
}
