/**
 * A small glob matcher for --ignore (Node 20 has none built in): `*` and `?` within one
 * path segment, `**` across segments, `[abc]`/`[!a-z]` classes and `{a,b}` alternatives.
 * A pattern without a `/` matches any single segment (as in .gitignore: `*.log` ignores
 * every log file, `tmp` every tmp directory and what is in it); one with a `/` matches the
 * path relative to the watched root from its start, and also everything below a match.
 */
export type Matcher = (relPath: string) => boolean;

function escape(c: string): string {
  return /[.+^${}()|[\]\\]/.test(c) ? `\\${c}` : c;
}

/** The regular-expression source for a glob (no anchors). */
function globSource(glob: string): string {
  let out = '';
  let inBraces = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        // `**/` matches zero or more whole segments; a trailing `**` anything at all.
        const slash = glob[i + 2] === '/';
        out += slash ? '(?:[^/]*/)*' : '.*';
        i += slash ? 2 : 1;
      } else out += '[^/]*';
    } else if (c === '?') out += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) {
        out += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, end);
      if (body.startsWith('!')) body = '^' + body.slice(1);
      out += `[${body.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else if (c === '{') {
      inBraces++;
      out += '(?:';
    } else if (c === '}' && inBraces > 0) {
      inBraces--;
      out += ')';
    } else if (c === ',' && inBraces > 0) out += '|';
    else if (c === '\\' && i + 1 < glob.length) out += escape(glob[++i]!);
    else out += escape(c);
  }
  return out + ')'.repeat(inBraces);
}

/** One matcher for several globs; paths are relative, with `/` separators. */
export function compileGlobs(globs: string[]): Matcher {
  const segment: RegExp[] = [];
  const anchored: RegExp[] = [];
  for (const raw of globs) {
    const g = raw.replace(/^\.\//, '').replace(/\/+$/, '');
    if (g === '') continue;
    if (g.includes('/')) anchored.push(new RegExp(`^${globSource(g.replace(/^\//, ''))}(?:/.*)?$`));
    else segment.push(new RegExp(`^${globSource(g)}$`));
  }
  return (rel) => {
    if (anchored.some((re) => re.test(rel))) return true;
    if (segment.length === 0) return false;
    return rel.split('/').some((part) => segment.some((re) => re.test(part)));
  };
}
