import type { Readable } from 'node:stream';

/**
 * Reads a worker's stream and hands on whole lines only, so lines from different workers
 * never interleave in the one sink. `deliver` returns false to pause the stream until
 * `resume` is called (backpressure reaches the worker, whose writes then block).
 */
export function relayLines(
  stream: Readable,
  deliver: (lines: string, resume: () => void) => boolean,
  onPartialAtEnd?: (rest: string) => void,
): void {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const data = rest + chunk;
    const cut = data.lastIndexOf('\n');
    if (cut < 0) {
      rest = data;
      return;
    }
    rest = data.slice(cut + 1);
    if (!deliver(data.slice(0, cut + 1), () => stream.resume())) stream.pause();
  });
  stream.on('end', () => {
    if (rest !== '') onPartialAtEnd?.(rest);
    rest = '';
  });
  stream.on('error', () => {});
}

/** Calls `each` for every line of `lines` (which ends with a newline). */
export function eachLine(lines: string, each: (line: string) => void): void {
  let start = 0;
  for (let i = lines.indexOf('\n'); i >= 0; i = lines.indexOf('\n', start)) {
    each(lines.slice(start, i));
    start = i + 1;
  }
}
