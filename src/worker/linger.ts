import type { Socket } from 'node:net';

/** The longest a refused client's remaining bytes are read and thrown away after its answer. */
const LINGER_MS = 2000;

const discard = (): void => {};

/**
 * Sends a refused request's answer, then closes the connection without losing it: a socket
 * closed while the client's bytes are still arriving (the rest of a 100 KB header, a body)
 * is reset by the kernel, and a reset makes the client's kernel drop the answer it has not
 * read yet, or the client stop at its failed send (curl). So, like nginx's lingering close,
 * the answer and our FIN go out after every write queued before them, whatever the client
 * still sends is read and discarded, and the socket is destroyed when the client closes its
 * end (both ends done: net.Socket's autoDestroy) or after `lingerMs` at most.
 *
 * Node's HTTP parser stops reading here: with its 'data' listener gone, the listener added
 * below takes the socket back from the parser (http.Server's socket.on override unconsumes it).
 */
export function lingeringClose(socket: Socket, answer: Buffer, lingerMs = LINGER_MS): void {
  socket.removeAllListeners('data');
  socket.on('data', discard);
  socket.resume();
  const timer = setTimeout(() => socket.destroy(), lingerMs);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.end(answer);
}
