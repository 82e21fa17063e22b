/**
 * One raw TCP exchange, run inside a sandbox by edge.test.ts: connects to HOST:PORT from the
 * local address FROM, writes the bytes given in base64, and prints as JSON what came back
 * before the server closed the connection (or before MS milliseconds passed).
 *
 *   node raw-exchange.js FROM HOST PORT BASE64 [MS]
 */
import { connect } from 'node:net';

const [from, host, port, payload, ms] = process.argv.slice(2);
if (!from || !host || !port || payload === undefined) {
  process.stderr.write('usage: raw-exchange.js FROM HOST PORT BASE64 [MS]\n');
  process.exit(2);
}

let got = '';
let error: string | undefined;
const socket = connect({ host, port: Number(port), localAddress: from });
const finish = (timedOut: boolean) => {
  process.stdout.write(`${JSON.stringify({ got, closed: !timedOut, error })}\n`);
  process.exit(0);
};
const timer = setTimeout(() => finish(true), Number(ms ?? 5000));
socket.setEncoding('latin1');
socket.on('data', (d: string) => (got += d));
// A server that closes at once may reset the connection before or while we write.
socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
socket.on('connect', () => socket.write(Buffer.from(payload, 'base64')));
socket.on('close', () => {
  clearTimeout(timer);
  finish(false);
});
