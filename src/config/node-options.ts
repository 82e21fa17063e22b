/**
 * worker-node-options: Node.js options for the workers alone, written as NODE_OPTIONS is
 * (options separated by whitespace, a value with spaces in double quotes, `\` escaping inside
 * them), given to each worker's node before corral's worker code. An `--import` given here
 * thus runs before the worker loads node:http, which is what OpenTelemetry's instrumentations
 * need (docs/tracing.md).
 */

/** The options, one argument each; throws an Error stating the rule for an unterminated quote. */
export function splitNodeOptions(text: string): string[] {
  const out: string[] = [];
  let current: string | undefined;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '\\' && i + 1 < text.length) current += text[++i]!;
      else if (c === '"') quoted = false;
      else current += c;
    } else if (/\s/.test(c)) {
      if (current !== undefined) out.push(current);
      current = undefined;
    } else if (c === '"') {
      quoted = true;
      current ??= '';
    } else {
      current = (current ?? '') + c;
    }
  }
  if (quoted) throw new Error('a double quote is not closed');
  if (current !== undefined) out.push(current);
  return out;
}

/**
 * Why these options cannot be given to a worker, or undefined. Only the options Node accepts
 * in NODE_OPTIONS (process.allowedNodeEnvironmentFlags) are allowed: they are the ones that
 * set up a process rather than choose what it runs (`--eval`, `--test`, a script), so a typo
 * or such an option stops corral at start (exit 78) instead of every worker at boot.
 */
export function nodeOptionsProblem(text: string): string | undefined {
  let args: string[];
  try {
    args = splitNodeOptions(text);
  } catch (err) {
    return (err as Error).message;
  }
  for (const arg of args) {
    if (!arg.startsWith('-')) continue;
    const name = arg.split('=')[0]!;
    if (name === '-' || name === '--' || !process.allowedNodeEnvironmentFlags.has(name)) {
      return `${name} is not an option Node.js accepts in NODE_OPTIONS (such as --import ./instrumentation.mjs, --require, --max-old-space-size=N, --enable-source-maps)`;
    }
  }
  return undefined;
}
