// Long-lived client load: WebSocket clients (the `ws` package) and Server-Sent Event
// streams (node:http) held open against one server, recording how each connection
// ends and, with `reconnect`, how the clients come back.
//
// Each WebSocket client sends a short message every `intervalMs` and checks that the
// server echoes it, in order. Each SSE client reads its body until it ends: 'end' is a
// clean end of body, anything else (the socket reset or closed before the final chunk)
// is a reset. Every handshake, close and reconnect is recorded with its time
// (performance.now(), milliseconds), so a caller can ask what happened after a moment
// of its own (a reload signal) and how closely the closes and reconnects bunched up.
//
// Bounded: connections open `batch` at a time (each batch handshaken before the next,
// so a listen backlog never decides the outcome), a client retries a failed reconnect
// at most `maxAttempts` times in a row, the whole load has a hard deadline, and
// nothing system-wide is raised or changed.
import http from 'node:http';
import WebSocket from 'ws';

const WS_ABNORMAL = 1006;

// The most events that fall in any window of `windowMs` (times in ms, any order).
function peakInWindow(times, windowMs = 100) {
  const xs = [...times].sort((a, b) => a - b);
  let peak = 0;
  let lo = 0;
  for (let hi = 0; hi < xs.length; hi++) {
    while (xs[hi] - xs[lo] >= windowMs) lo++;
    peak = Math.max(peak, hi - lo + 1);
  }
  return peak;
}

function countBy(items, key) {
  const out = {};
  for (const it of items) {
    const k = String(key(it));
    out[k] = (out[k] || 0) + 1;
  }
  return out;
}

function errorText(err) {
  return err ? err.code || err.message || String(err) : 'unknown';
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class LongLivedLoad {
  /**
   * url: the server (http://host:port); ws/sse: client counts; wsPath/ssePath: their
   * paths; intervalMs: time between a WebSocket client's messages; batch: connections
   * opened at once; reconnect: reopen a client as soon as its connection ends;
   * serverHeader: a response header naming the process that serves the connection (the
   * upgrade's 101 for WebSockets, the stream's 200 for SSE), so "served by a new
   * worker" can be checked; deadlineMs: everything is closed after this long.
   */
  constructor({
    url, ws = 0, sse = 0, wsPath = '/ws', ssePath = '/events', intervalMs = 1000, batch = 50,
    reconnect = false, retryMs = 100, maxAttempts = 50, handshakeTimeoutMs = 10000,
    serverHeader = 'x-served-by', deadlineMs = 120000,
  }) {
    const base = new URL(url);
    this.wsUrl = `ws://${base.host}${wsPath}`;
    this.sseTarget = { host: base.hostname, port: Number(base.port) };
    this.ssePath = ssePath;
    this.opts = { intervalMs, batch, reconnect, retryMs, maxAttempts, handshakeTimeoutMs, serverHeader };
    this.clients = [];
    for (let i = 0; i < ws; i++) this.clients.push(this.newClient('ws', i));
    for (let i = 0; i < sse; i++) this.clients.push(this.newClient('sse', i));
    // Every handshake: {kind, id, at, ok, initial, server?, status?, error?}
    this.handshakes = [];
    // Every end of a connection the client did not ask for: WebSockets
    // {kind:'ws', id, at, code, server}, streams {kind:'sse', id, at, how:'end'|'reset', server}.
    this.closes = [];
    this.echoes = 0;
    this.echoMismatches = 0;
    this.stopping = false;
    this.timedOut = false;
    this.deadline = setTimeout(() => {
      this.timedOut = true;
      this.stop();
    }, deadlineMs);
    this.deadline.unref();
    this.waiters = new Set();
  }

  newClient(kind, id) {
    // conn: the live connection (a WebSocket or an http request), server: who serves it,
    // open: handshake done and not yet ended, attempts: failed handshakes in a row.
    return { kind, id, conn: null, server: null, open: false, attempts: 0, timer: null, sent: 0, expect: 0 };
  }

  /** Opens every client, `batch` at a time; resolves when each first handshake is decided. */
  async open() {
    this.openedAt = performance.now();
    for (let i = 0; i < this.clients.length && !this.stopping; i += this.opts.batch) {
      await Promise.all(this.clients.slice(i, i + this.opts.batch).map((c) => this.connect(c, true)));
    }
    return this;
  }

  // One handshake for client c; resolves true when it is open, false when it failed.
  connect(c, initial) {
    return c.kind === 'ws' ? this.connectWs(c, initial) : this.connectSse(c, initial);
  }

  handshake(c, initial, fields) {
    const at = performance.now();
    this.handshakes.push({ kind: c.kind, id: c.id, at, initial, ...fields });
    if (fields.ok) {
      c.open = true;
      c.attempts = 0;
      c.server = fields.server ?? null;
    } else {
      c.attempts++;
      if (this.opts.reconnect && !this.stopping && c.attempts < this.opts.maxAttempts) {
        c.timer = setTimeout(() => { c.timer = null; this.connect(c, false); }, this.opts.retryMs);
      }
    }
    this.notify();
  }

  ended(c, fields) {
    if (!c.open) return;
    c.open = false;
    clearInterval(c.ticker);
    const byUs = this.stopping;
    if (!byUs) this.closes.push({ kind: c.kind, id: c.id, at: performance.now(), server: c.server, ...fields });
    this.notify();
    if (this.opts.reconnect && !byUs) this.connect(c, false);
  }

  connectWs(c, initial) {
    return new Promise((resolve) => {
      let server = null;
      let decided = false;
      const decide = (fields) => {
        if (decided) return;
        decided = true;
        this.handshake(c, initial, fields);
        resolve(fields.ok);
      };
      // The client's id in the query, so a server's access line can be matched to it.
      const ws = new WebSocket(`${this.wsUrl}?client=ws${c.id}`, { perMessageDeflate: false, handshakeTimeout: this.opts.handshakeTimeoutMs });
      c.conn = ws;
      c.expect = c.sent;
      ws.on('upgrade', (res) => { server = res.headers[this.opts.serverHeader] ?? null; });
      ws.on('unexpected-response', (req, res) => {
        decide({ ok: false, status: res.statusCode });
        res.resume();
        req.destroy();
      });
      ws.on('open', () => {
        decide({ ok: true, server });
        // A random phase, so the messages of 500 clients do not arrive in one burst.
        const send = () => {
          if (ws.readyState === WebSocket.OPEN) ws.send(`m${c.sent++}`);
        };
        const phase = setTimeout(() => {
          send();
          c.ticker = setInterval(send, this.opts.intervalMs);
        }, Math.random() * this.opts.intervalMs);
        ws.once('close', () => clearTimeout(phase));
      });
      ws.on('message', (data) => {
        if (String(data) === `m${c.expect}`) this.echoes++;
        else this.echoMismatches++;
        c.expect++;
      });
      ws.on('error', (err) => {
        if (!decided) decide({ ok: false, error: errorText(err) });
        else c.lastError = errorText(err);
      });
      ws.on('close', (code) => {
        if (!decided) decide({ ok: false, error: 'closed before open' });
        else this.ended(c, { code: code || WS_ABNORMAL });
      });
    });
  }

  connectSse(c, initial) {
    return new Promise((resolve) => {
      let decided = false;
      const decide = (fields) => {
        if (decided) return;
        decided = true;
        this.handshake(c, initial, fields);
        resolve(fields.ok);
      };
      const req = http.get({
        ...this.sseTarget, path: `${this.ssePath}?client=sse${c.id}`, agent: false, headers: { Accept: 'text/event-stream' },
      }, (res) => {
        req.setTimeout(0);
        if (res.statusCode !== 200) {
          res.resume();
          decide({ ok: false, status: res.statusCode });
          return;
        }
        decide({ ok: true, server: res.headers[this.opts.serverHeader] ?? null });
        let how = null;
        res.on('data', () => {});
        res.on('end', () => { how ??= 'end'; });
        res.on('aborted', () => { how ??= 'reset'; });
        res.on('error', () => { how ??= 'reset'; });
        // 'close' comes last in every case; 'end' before it means the final chunk arrived.
        res.on('close', () => this.ended(c, { how: how === 'end' && res.complete ? 'end' : 'reset' }));
      });
      c.conn = req;
      req.setTimeout(this.opts.handshakeTimeoutMs, () => req.destroy(new Error('handshake timeout')));
      req.on('error', (err) => decide({ ok: false, error: errorText(err) }));
    });
  }

  notify() {
    for (const w of this.waiters) w();
  }

  /** Resolves when pred() holds (checked after every handshake and close), or rejects after timeoutMs. */
  waitUntil(pred, timeoutMs, what = 'condition') {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!pred()) return;
        finish();
        resolve(performance.now());
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${what}: not reached within ${timeoutMs} ms (${JSON.stringify(this.state())})`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** How many clients are open now, and the servers they are on. */
  state() {
    const open = this.clients.filter((c) => c.open);
    return { clients: this.clients.length, open: open.length, servers: countBy(open, (c) => c.server) };
  }

  /** The servers (serverHeader values) of the open connections. */
  servers() {
    return new Set(this.clients.filter((c) => c.open).map((c) => c.server));
  }

  /** Resolves when every client is open on a server not in `old`; the time it happened. */
  waitMovedFrom(old, timeoutMs) {
    return this.waitUntil(() => this.clients.every((c) => c.open && !old.has(c.server)), timeoutMs, 'every client on a new server');
  }

  /** Resolves when `n` connections (of `kind`, if given) have ended since the load started. */
  waitCloses(n, timeoutMs, kind) {
    const count = () => (kind ? this.closes.filter((e) => e.kind === kind).length : this.closes.length);
    return this.waitUntil(() => count() >= n, timeoutMs, `${n} closes`);
  }

  /** Closes every client (WebSockets with 1000), without reconnecting; resolves when all are closed. */
  async stop() {
    if (this.stopping) return this.stopped;
    this.stopping = true;
    clearTimeout(this.deadline);
    this.stopped = (async () => {
      for (const c of this.clients) {
        clearTimeout(c.timer);
        clearInterval(c.ticker);
        if (!c.conn) continue;
        if (c.kind === 'ws') {
          if (c.conn.readyState === WebSocket.OPEN) c.conn.close(1000);
          else c.conn.terminate();
        } else {
          c.conn.destroy();
        }
      }
      // A close handshake needs the server's answer; give it a moment, then cut.
      const t0 = performance.now();
      const live = () => this.clients.filter((c) => c.kind === 'ws' && c.conn && c.conn.readyState !== WebSocket.CLOSED);
      while (live().length && performance.now() - t0 < 3000) await sleep(20);
      for (const c of live()) c.conn.terminate();
    })();
    return this.stopped;
  }

  /**
   * What happened from `since` on (a performance.now() time, default the start): close
   * codes, resets, failed handshakes, reconnects, the peak of closes and of reconnects in
   * any `windowMs`, and when the first and last close came (ms after `since`).
   */
  summary({ since = 0, windowMs = 100 } = {}) {
    const closes = this.closes.filter((e) => e.at >= since);
    const wsCloses = closes.filter((e) => e.kind === 'ws');
    const sseCloses = closes.filter((e) => e.kind === 'sse');
    const shakes = this.handshakes.filter((h) => h.at >= since);
    const failed = shakes.filter((h) => !h.ok);
    const reconnects = shakes.filter((h) => h.ok && !h.initial);
    const first = closes.length ? Math.min(...closes.map((e) => e.at)) : null;
    const last = closes.length ? Math.max(...closes.map((e) => e.at)) : null;
    const rel = (t) => (t === null ? null : Math.round(t - since));
    return {
      clients: { ws: this.clients.filter((c) => c.kind === 'ws').length, sse: this.clients.filter((c) => c.kind === 'sse').length },
      initialFailed: this.handshakes.filter((h) => h.initial && !h.ok).length,
      closes: closes.length,
      wsCloseCodes: countBy(wsCloses, (e) => e.code),
      wsAbnormal: wsCloses.filter((e) => e.code === WS_ABNORMAL).length,
      sseEnded: sseCloses.filter((e) => e.how === 'end').length,
      sseResets: sseCloses.filter((e) => e.how !== 'end').length,
      failedHandshakes: failed.length,
      failures: countBy(failed, (h) => h.status ?? h.error),
      reconnects: reconnects.length,
      peakClosesPerWindow: peakInWindow(closes.map((e) => e.at), windowMs),
      peakReconnectsPerWindow: peakInWindow(reconnects.map((h) => h.at), windowMs),
      windowMs,
      firstCloseMs: rel(first),
      lastCloseMs: rel(last),
      closeSpreadMs: first === null ? null : Math.round(last - first),
      echoes: this.echoes,
      echoMismatches: this.echoMismatches,
      timedOut: this.timedOut,
    };
  }
}

