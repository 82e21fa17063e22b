/**
 * Where an app's load error is, and the source around it: the first frame of the stack in
 * the app's own files, or, for a SyntaxError (an ES module's carries no location in its
 * stack), the file among the candidates that `node --check` rejects.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { extname, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface SourceLocation {
  file: string;
  line: number;
  column: number | undefined;
}

const FRAME = /(?:^|[\s(])(file:\/\/\/[^\s)]+?|\/[^\s():]+?):(\d+)(?::(\d+))?(?=[\s)]|$)/;

function toPath(f: string): string {
  if (!f.startsWith('file://')) return f;
  try {
    return fileURLToPath(f.replace(/[?#].*$/, ''));
  } catch {
    return f;
  }
}

/** The first location in `stack` that is in none of `skipDirs` (corral's own code, dependencies). */
export function locationFromStack(stack: string, skipDirs: string[]): SourceLocation | undefined {
  for (const text of stack.split('\n')) {
    const m = FRAME.exec(text);
    if (!m) continue;
    const file = toPath(m[1]!);
    if (skipDirs.some((d) => file.startsWith(d + sep)) || file.includes(`${sep}node_modules${sep}`)) continue;
    return { file, line: Number(m[2]), column: m[3] ? Number(m[3]) : undefined };
  }
  return undefined;
}

const CHECKABLE = new Set(['.js', '.mjs', '.cjs']);

/** `node --check FILE`: undefined when the file parses, else where and why it does not. */
function checkSyntax(file: string, timeoutMs = 5000): Promise<{ loc: SourceLocation; message: string } | undefined> {
  if (!CHECKABLE.has(extname(file))) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    execFile(process.execPath, ['--check', file], { timeout: timeoutMs, encoding: 'utf8' }, (err, _out, stderr) => {
      if (!err) return resolve(undefined);
      const lines = stderr.split('\n');
      const m = FRAME.exec(lines[0] ?? '');
      const message = lines.find((l) => /^\w*Error\b/.test(l)) ?? lines.find(Boolean) ?? 'syntax error';
      if (!m) return resolve(undefined);
      // Line 3 of the output carries carets under the offending token.
      const caret = (lines[2] ?? '').indexOf('^');
      resolve({ loc: { file: toPath(m[1]!), line: Number(m[2]), column: caret >= 0 ? caret + 1 : undefined }, message });
    });
  });
}

/** The first candidate with a syntax error. */
export async function findSyntaxError(candidates: string[]): Promise<{ loc: SourceLocation; message: string } | undefined> {
  for (const file of new Set(candidates)) {
    const found = await checkSyntax(file);
    if (found) return found;
  }
  return undefined;
}

/** A few lines of source around `loc`, the line itself marked, a caret under the column. */
export function codeFrame(loc: SourceLocation, opts: { context?: number; color?: boolean } = {}): string {
  let source: string;
  try {
    source = readFileSync(loc.file, 'utf8');
  } catch {
    return '';
  }
  const lines = source.split(/\r?\n/);
  const context = opts.context ?? 2;
  const first = Math.max(1, loc.line - context);
  const last = Math.min(lines.length, loc.line + context);
  const width = String(last).length;
  const red = (s: string) => (opts.color ? `\x1b[31m${s}\x1b[0m` : s);
  const dim = (s: string) => (opts.color ? `\x1b[2m${s}\x1b[0m` : s);
  const out: string[] = [];
  for (let n = first; n <= last; n++) {
    const text = (lines[n - 1] ?? '').replace(/\t/g, '  ');
    const gutter = `${String(n).padStart(width)} |`;
    if (n === loc.line) {
      out.push(`${red('>')} ${gutter} ${text}`);
      if (loc.column !== undefined && loc.column > 0) out.push(`  ${' '.repeat(width)} | ${' '.repeat(loc.column - 1)}${red('^')}`);
    } else out.push(dim(`  ${gutter} ${text}`));
  }
  return out.join('\n');
}
