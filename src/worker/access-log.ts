import type { IncomingMessage, ServerResponse } from 'node:http';

/** The access log hook: one JSON line per request on stdout. */
export function accessLogHook(opts: { enabled: boolean; format: string }) {
  if (!opts.enabled) return undefined;
  return (req: IncomingMessage, res: ServerResponse, startedAt: number): void => {
    const line = JSON.stringify({
      time: new Date().toISOString(),
      pid: process.pid,
      method: req.method,
      url: req.url,
      status: res.statusCode,
      bytes: Number(res.getHeader('content-length') ?? 0),
      duration: Math.round((performance.now() - startedAt) * 1000) / 1000,
      remote: req.socket.remoteAddress,
      ua: req.headers['user-agent'],
    });
    process.stdout.write(line + '\n');
  };
}
