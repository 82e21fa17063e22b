/**
 * What `corral dev` watches: directories recursively (minus ignored paths) and single files
 * (.env, the config file), through inotify (one fs.watch per directory, so ignored trees
 * such as node_modules cost nothing) or, with `poll`, by comparing stat() results at an
 * interval (network and container mounts, where inotify sees no changes). A burst of
 * events is reported once, after `debounceMs` of quiet (at most `maxWaitMs` after the first).
 */
import { readdirSync, statSync, watch, type FSWatcher, type Stats } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { compileGlobs, type Matcher } from './glob.js';

/** Ignored unless given with --watch: dependencies, VCS data, build outputs, editor droppings. */
const DEFAULT_IGNORES = [
  'node_modules', '.git', '.hg', '.svn', 'dist', 'build', 'out', 'coverage', '.nyc_output',
  '.next', '.nuxt', '.svelte-kit', '.turbo', '.cache', '.parcel-cache', '.vite',
  '*.log', '*.swp', '*.swx', '*~', '.#*', '4913', '.DS_Store',
];

export interface WatchOptions {
  /** Directories watched recursively (a file here is watched on its own). */
  roots: string[];
  /** Single files, watched through their directory so a replace-by-rename is seen. */
  files: string[];
  /** Globs relative to each root, besides DEFAULT_IGNORES. */
  ignore: string[];
  /** Absolute paths ignored with everything below them (log files and their directory). */
  ignorePaths: string[];
  /** Never ignored, nor any directory above them (the app's own file). */
  keep: string[];
  poll: boolean;
  pollIntervalMs: number;
  debounceMs: number;
  maxWaitMs?: number;
  onChange(files: string[]): void;
  /** A problem worth telling the user about (a directory that cannot be watched). */
  onWarning?(message: string): void;
}

type Snapshot = Map<string, string>;

export class Watcher {
  private readonly ignored: Matcher;
  private readonly watchers = new Map<string, FSWatcher>();
  private readonly pending = new Set<string>();
  private firstAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private snapshot: Snapshot = new Map();
  private closed = false;
  private readonly roots: string[];
  private readonly files: string[];

  constructor(private readonly o: WatchOptions) {
    this.ignored = compileGlobs([...DEFAULT_IGNORES, ...o.ignore]);
    const roots: string[] = [];
    const files = o.files.map((f) => resolve(f));
    for (const r of o.roots.map((p) => resolve(p))) {
      if (isDir(r)) roots.push(r);
      else files.push(r);
    }
    this.roots = [...new Set(roots)];
    this.files = [...new Set(files)];
  }

  /** The directories and files being watched, for the start banner. */
  get what(): string[] {
    return [...this.roots, ...this.files];
  }

  start(): void {
    if (this.o.poll) {
      this.snapshot = this.scan();
      this.pollTimer = setInterval(() => this.poll(), this.o.pollIntervalMs);
      this.pollTimer.unref();
      return;
    }
    for (const root of this.roots) this.watchTree(root);
    for (const dir of new Set(this.files.map((f) => dirname(f)))) {
      this.watchDir(`files:${dir}`, dir, (name) => {
        const full = join(dir, name);
        if (this.files.includes(full)) this.note(full);
      });
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.pollTimer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  /** True when a path under one of the roots is ignored. */
  isIgnored(full: string): boolean {
    if (this.o.keep.some((k) => k === full || k.startsWith(full + sep))) return false;
    if (this.o.ignorePaths.some((p) => full === p || full.startsWith(p + sep))) return true;
    for (const root of this.roots) {
      if (full !== root && full.startsWith(root + sep)) return this.ignored(relative(root, full).split(sep).join('/'));
    }
    return false;
  }

  private note(file: string): void {
    if (this.closed) return;
    const now = performance.now();
    if (this.pending.size === 0) this.firstAt = now;
    this.pending.add(file);
    clearTimeout(this.timer);
    const maxWait = this.o.maxWaitMs ?? Math.max(500, this.o.debounceMs * 10);
    const wait = Math.max(0, Math.min(this.o.debounceMs, this.firstAt + maxWait - now));
    this.timer = setTimeout(() => this.flush(), wait);
  }

  private flush(): void {
    const files = [...this.pending];
    this.pending.clear();
    if (files.length > 0 && !this.closed) this.o.onChange(files);
  }

  // ---- inotify -------------------------------------------------------------------------

  private watchTree(dir: string): void {
    this.watchDir(`tree:${dir}`, dir, (name) => {
      const full = join(dir, name);
      if (this.isIgnored(full)) return;
      // A new (or renamed) directory: watch it and what it holds.
      if (isDir(full)) {
        if (!this.watchers.has(`tree:${full}`)) {
          this.watchTree(full);
          this.note(full);
        }
        return;
      }
      this.note(full);
    });
    for (const entry of readdirSafe(dir)) {
      if (!entry.isDirectory()) continue;
      const full = join(dir, entry.name);
      if (!this.isIgnored(full)) this.watchTree(full);
    }
  }

  private watchDir(key: string, dir: string, onName: (name: string) => void): void {
    if (this.watchers.has(key)) return;
    let w: FSWatcher;
    try {
      w = watch(dir, { persistent: true }, (_event, name) => {
        if (name) onName(name.toString());
        else this.note(dir);
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      const hint = code === 'ENOSPC' ? ' (inotify watch limit reached: raise fs.inotify.max_user_watches, add --ignore, or use --poll)' : '';
      this.o.onWarning?.(`cannot watch ${dir}: ${(err as Error).message}${hint}`);
      return;
    }
    w.on('error', () => {
      // The directory went away; a watcher on its parent sees it come back.
      w.close();
      this.watchers.delete(key);
    });
    this.watchers.set(key, w);
  }

  // ---- polling -------------------------------------------------------------------------

  private poll(): void {
    const next = this.scan();
    for (const [path, sig] of next) if (this.snapshot.get(path) !== sig) this.note(path);
    for (const path of this.snapshot.keys()) if (!next.has(path)) this.note(path);
    this.snapshot = next;
  }

  private scan(): Snapshot {
    const out: Snapshot = new Map();
    const walk = (dir: string) => {
      for (const entry of readdirSafe(dir)) {
        const full = join(dir, entry.name);
        if (this.isIgnored(full)) continue;
        if (entry.isDirectory()) walk(full);
        else if (entry.isFile()) record(out, full);
      }
    };
    for (const root of this.roots) walk(root);
    for (const f of this.files) record(out, f);
    return out;
  }
}

function record(out: Snapshot, file: string): void {
  let st: Stats;
  try {
    st = statSync(file);
  } catch {
    return;
  }
  out.set(file, `${st.mtimeMs}:${st.size}:${st.ino}`);
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function readdirSafe(dir: string) {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}
