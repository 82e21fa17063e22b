import type { IncomingMessage, ServerResponse } from 'node:http';
import { once } from 'node:events';
import { Readable } from 'node:stream';

/**
 * The second argument of a fetch app: the Node request and response, as @hono/node-server
 * passes them (Hono's `c.env`), for middleware that needs them (`getConnInfo`, @hono/node-ws).
 */
interface NodeBindings {
  incoming: IncomingMessage;
  outgoing: ServerResponse;
}

export type FetchFn = (request: Request, env: NodeBindings) => Response | Promise<Response>;

/**
 * A response saying the app already answered through `outgoing` itself (@hono/node-server's
 * RESPONSE_ALREADY_SENT): nothing more is written.
 */
const ALREADY_SENT = 'x-hono-already-sent';

/** Serves a Web-standard fetch(Request) => Response app (Hono and others) on node:http. */
export function fetchHandler(fetchFn: FetchFn) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const controller = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) controller.abort();
    });
    const response = await fetchFn(toRequest(req, controller.signal), { incoming: req, outgoing: res });
    if (response.headers.has(ALREADY_SENT)) return;
    await writeResponse(response, req.method === 'HEAD', res);
  };
}

function toRequest(req: IncomingMessage, signal: AbortSignal): Request {
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  const host = req.headers.host ?? 'localhost';
  const proto = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  const init: RequestInit & { duplex?: 'half' } = { method: req.method, headers, signal };
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    init.body = Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>;
    init.duplex = 'half';
  }
  return new Request(`${proto}://${host}${req.url ?? '/'}`, init);
}

async function writeResponse(response: Response, head: boolean, res: ServerResponse): Promise<void> {
  res.statusCode = response.status;
  if (response.statusText) res.statusMessage = response.statusText;
  response.headers.forEach((value, key) => {
    if (key !== 'set-cookie') res.setHeader(key, value);
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) res.setHeader('set-cookie', cookies);
  if (!response.body || head) {
    res.end();
    return;
  }
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    if (res.destroyed) return;
    if (!res.write(chunk)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
  }
  res.end();
}
