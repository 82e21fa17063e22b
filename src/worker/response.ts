import { ServerResponse } from 'node:http';

/** Called once per response, when the app ends it and before its last bytes are sent. */
export type EndHook = (res: CorralResponse) => void;

let onEnd: EndHook = () => {};

export function setEndHook(hook: EndHook): void {
  onEnd = hook;
}

function byteLength(chunk: unknown, encoding: unknown): number {
  if (typeof chunk === 'string') return Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  if (chunk instanceof Uint8Array) return chunk.byteLength;
  return 0;
}

/**
 * The response class of corral's servers (http.createServer's ServerResponse option): it
 * counts body bytes and calls the end hook, without per-request closures or wrappers, so
 * every response keeps one shape.
 */
export class CorralResponse extends ServerResponse {
  startedAt = 0;
  bytesOut = 0;
  requestId = '';
  ended = false;

  override write(chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
    this.bytesOut += byteLength(chunk, encoding);
    return (ServerResponse.prototype.write as (...a: unknown[]) => boolean).call(this, chunk, encoding, cb);
  }

  override end(chunk?: unknown, encoding?: unknown, cb?: unknown): this {
    if (!this.ended) {
      this.ended = true;
      if (typeof chunk !== 'function') this.bytesOut += byteLength(chunk, encoding);
      onEnd(this);
    }
    return (ServerResponse.prototype.end as (...a: unknown[]) => this).call(this, chunk, encoding, cb);
  }
}
