import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** A client's X-Request-Id is kept when it is printable ASCII of sane length. */
const VALID_ID = /^[\x21-\x7e]{1,200}$/;

/**
 * Request ids this worker makes: 96 random bits drawn once per worker, then a counter. As
 * unique as a random UUID for logs (two workers drawing the same prefix is as unlikely as
 * two UUIDs colliding), for the cost of an addition instead of a UUID per request.
 */
const ID_PREFIX = randomBytes(12).toString('base64url') + '-';
let counter = 0;

export function newRequestId(): string {
  return ID_PREFIX + (++counter).toString(36);
}

/** The client's X-Request-Id when it is usable, else a new one. */
export function requestId(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id'];
  return typeof incoming === 'string' && VALID_ID.test(incoming) ? incoming : newRequestId();
}
