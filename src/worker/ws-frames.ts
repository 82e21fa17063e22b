/**
 * Just enough of the WebSocket framing (RFC 6455 section 5.2) for corral to see a close
 * frame go by and to send one: frame headers are read, payloads skipped, except the first
 * two bytes of a close frame (its code). Control frames are never compressed or fragmented,
 * so permessage-deflate changes nothing here.
 */

/** RFC 6455 7.4.1: no close frame was received before the connection closed. */
export const CLOSE_ABNORMAL = 1006;
/** RFC 6455 7.4.1: a close frame without a code. */
export const CLOSE_NO_STATUS = 1005;

const OPCODE_CLOSE = 0x8;
/** The longest frame header: 2 bytes, an 8-byte length, a 4-byte mask. */
const MAX_HEADER = 14;
/** A control frame's payload is at most 125 bytes: 2 for the code, 123 for the reason. */
const MAX_REASON = 123;

/**
 * Reads the frames of one direction of a WebSocket, chunk by chunk, wherever the chunks are
 * cut, until it has seen a close frame (then `closeCode` is set and it reads no more). Client
 * frames are masked, server frames are not: the mask bit of each header says which.
 */
export class FrameScanner {
  /** The close frame's code (CLOSE_NO_STATUS when it carried none); undefined until one is seen. */
  closeCode: number | undefined;
  /** Set when the bytes cannot be frames (a 64-bit length over 2^53): scanning stops. */
  broken = false;
  private readonly header = new Uint8Array(MAX_HEADER);
  private have = 0;
  private need = 2;
  /** Payload bytes of the current frame still to go by; -1 while reading a header. */
  private left = -1;
  private opcode = 0;
  private masked = false;
  private maskAt = 0;
  private code = 0;
  private codeBytes = 0;

  get done(): boolean {
    return this.closeCode !== undefined || this.broken;
  }

  feed(chunk: Uint8Array): void {
    let i = 0;
    const n = chunk.length;
    while (i < n && !this.done) {
      if (this.left < 0) {
        // Header bytes: the first two say how many more there are.
        while (i < n && this.have < this.need) this.header[this.have++] = chunk[i++]!;
        if (this.have < this.need) return;
        if (this.need === 2) {
          const len7 = this.header[1]! & 0x7f;
          this.masked = (this.header[1]! & 0x80) !== 0;
          this.need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (this.masked ? 4 : 0);
          if (this.have < this.need) continue;
        }
        this.startPayload();
        continue;
      }
      if (this.opcode === OPCODE_CLOSE) {
        // The code: the payload's first two bytes, unmasked with the key's first two.
        while (i < n && this.codeBytes < 2 && this.left > 0) {
          const mask = this.masked ? this.header[this.maskAt + this.codeBytes]! : 0;
          this.code = (this.code << 8) | (chunk[i++]! ^ mask);
          this.codeBytes++;
          this.left--;
        }
        if (this.codeBytes === 2) this.closeCode = this.code;
        else if (this.left === 0) this.closeCode = CLOSE_NO_STATUS;
        return;
      }
      const skip = Math.min(this.left, n - i);
      i += skip;
      this.left -= skip;
      if (this.left === 0) this.nextFrame();
    }
  }

  private startPayload(): void {
    const h = this.header;
    this.opcode = h[0]! & 0x0f;
    const len7 = h[1]! & 0x7f;
    let len = len7;
    let at = 2;
    if (len7 === 126) {
      len = (h[2]! << 8) | h[3]!;
      at = 4;
    } else if (len7 === 127) {
      const high = ((h[2]! << 24) >>> 0) + (h[3]! << 16) + (h[4]! << 8) + h[5]!;
      if (high >= 0x200000) {
        this.broken = true;
        return;
      }
      len = high * 0x100000000 + ((h[6]! << 24) >>> 0) + (h[7]! << 16) + (h[8]! << 8) + h[9]!;
      at = 10;
    }
    this.maskAt = at;
    this.left = len;
    if (this.opcode === OPCODE_CLOSE && len === 0) this.closeCode = CLOSE_NO_STATUS;
    else if (len === 0) this.nextFrame();
  }

  private nextFrame(): void {
    this.have = 0;
    this.need = 2;
    this.left = -1;
    this.code = 0;
    this.codeBytes = 0;
  }
}

/**
 * A server's close frame (FIN, opcode 8, unmasked) with `code` and a short UTF-8 reason,
 * cut to 123 bytes at a character boundary.
 */
export function closeFrame(code: number, reason = ''): Buffer {
  let text = Buffer.from(reason, 'utf8');
  if (text.length > MAX_REASON) {
    let end = MAX_REASON;
    // Never cut inside a character: back off over continuation bytes (10xxxxxx).
    while (end > 0 && (text[end]! & 0xc0) === 0x80) end--;
    text = text.subarray(0, end);
  }
  const frame = Buffer.allocUnsafe(4 + text.length);
  frame[0] = 0x80 | OPCODE_CLOSE;
  frame[1] = 2 + text.length;
  frame.writeUInt16BE(code, 2);
  text.copy(frame, 4);
  return frame;
}
