import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compileAccessFormat, type AccessRecord } from '../../src/logging/access-format.js';
import { parseTraceparent, traceLogFields } from '../../src/logging/trace-context.js';
import { nodeOptionsProblem, splitNodeOptions } from '../../src/config/node-options.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';
const VALID = `00-${TRACE}-${SPAN}-01`;

const rec = (rawHeaders: string[]): AccessRecord => ({
  time: new Date('2026-01-02T03:04:05.678Z'), method: 'GET', url: '/a', httpVersion: '1.1', status: 200, bytes: 2,
  durationMs: 1, remoteAddr: '10.0.0.1', requestId: 'rid-1', pid: 42, worker: '1.2', rawHeaders, res: { getHeader: () => undefined },
});

describe('traceparent (W3C Trace Context level 1)', () => {
  test('version 00: the trace id and the parent id, whatever the flags', () => {
    for (const flags of ['00', '01', 'ff', '09']) {
      assert.deepEqual(parseTraceparent(`00-${TRACE}-${SPAN}-${flags}`), { traceId: TRACE, spanId: SPAN });
    }
    // Ids that are not all zero are valid however many zeros they hold.
    assert.deepEqual(parseTraceparent(`00-${'0'.repeat(31)}1-${'0'.repeat(15)}1-00`), { traceId: '0'.repeat(31) + '1', spanId: '0'.repeat(15) + '1' });
  });

  test('version 00 malformed: invalid', () => {
    const invalid = [
      undefined, '', VALID.slice(0, 54), VALID + '-', VALID + '0', VALID + '-extra',
      `00-${TRACE.toUpperCase()}-${SPAN}-01`, `00-${TRACE}-${SPAN.toUpperCase()}-01`, `00-${TRACE}-${SPAN}-0A`, `0A-${TRACE}-${SPAN}-01`,
      `00-${'0'.repeat(32)}-${SPAN}-01`, `00-${TRACE}-${'0'.repeat(16)}-01`,
      `00-${TRACE.slice(1)}g-${SPAN}-01`, `00-${TRACE}-${SPAN.slice(1)}z-01`, `00-${TRACE}-${SPAN}-0x`,
      `00_${TRACE}-${SPAN}-01`, `00-${TRACE}_${SPAN}-01`, `00-${TRACE}-${SPAN}_01`,
      `00-${TRACE}1-${SPAN.slice(1)}-01`, `0-${TRACE}-${SPAN}-010`, ` 00-${TRACE}-${SPAN}-0`,
      `${VALID}, ${VALID}`,
    ];
    for (const v of invalid) assert.equal(parseTraceparent(v), undefined, String(v));
  });

  test('version ff is invalid however well formed', () => {
    assert.equal(parseTraceparent(`ff-${TRACE}-${SPAN}-01`), undefined);
  });

  test('a later version: read as version 00 laid out, then the end or a dash before what it adds', () => {
    assert.deepEqual(parseTraceparent(`01-${TRACE}-${SPAN}-01`), { traceId: TRACE, spanId: SPAN });
    assert.deepEqual(parseTraceparent(`cc-${TRACE}-${SPAN}-01-what-the-future-holds`), { traceId: TRACE, spanId: SPAN });
    assert.deepEqual(parseTraceparent(`fe-${TRACE}-${SPAN}-00-`), { traceId: TRACE, spanId: SPAN });
    for (const v of [`cc-${TRACE}-${SPAN}-01x`, `cc-${TRACE}-${SPAN}-01.more`, `cc-${TRACE}-${SPAN}-0`, `cc-${TRACE.toUpperCase()}-${SPAN}-01`, `cc-${'0'.repeat(32)}-${SPAN}-01`, `Cc-${TRACE}-${SPAN}-01`]) {
      assert.equal(parseTraceparent(v), undefined, v);
    }
  });

  test('error-log fields: the ids under the access log\'s names, nothing without a valid header', () => {
    assert.deepEqual(traceLogFields(['Traceparent', VALID]), { trace_id: TRACE, span_id: SPAN });
    assert.equal(traceLogFields(['traceparent', VALID.toUpperCase()]), undefined);
    assert.equal(traceLogFields(['traceparent', VALID, 'traceparent', VALID]), undefined, 'sent twice');
    assert.equal(traceLogFields([]), undefined);
  });
});

describe('trace ids in access lines', () => {
  test('json: trace_id and span_id after request_id with a valid header, absent otherwise', () => {
    const json = compileAccessFormat('json');
    const line = json(rec(['User-Agent', 'ua', 'TraceParent', VALID]));
    assert.deepEqual(Object.keys(JSON.parse(line) as object).slice(-5), ['request_id', 'trace_id', 'span_id', 'pid', 'worker']);
    assert.equal((JSON.parse(line) as Record<string, unknown>).trace_id, TRACE);
    assert.equal((JSON.parse(line) as Record<string, unknown>).span_id, SPAN);
    const bad = `00-${TRACE}-${SPAN}-01"},"evil":"x`;
    for (const raw of [[], ['traceparent', bad], ['traceparent', `ff-${TRACE}-${SPAN}-01`]]) {
      const other = json(rec(raw));
      assert.equal(other, json(rec([])), 'the line is what it is without the header');
      assert.doesNotMatch(other, /trace_id|span_id|evil/);
    }
  });

  test('templates: {trace_id} and {span_id}, `-` when the header is absent or invalid', () => {
    const t = compileAccessFormat('{request_id} {trace_id} {span_id}');
    assert.equal(t(rec(['traceparent', VALID])), `rid-1 ${TRACE} ${SPAN}`);
    assert.equal(t(rec(['traceparent', 'garbage with spaces'])), 'rid-1 - -');
    assert.equal(t(rec([])), 'rid-1 - -');
  });
});

describe('worker-node-options', () => {
  test('split as NODE_OPTIONS is: whitespace, double quotes, escapes inside them', () => {
    assert.deepEqual(splitNodeOptions(''), []);
    assert.deepEqual(splitNodeOptions('  --import ./instr.mjs\t--enable-source-maps '), ['--import', './instr.mjs', '--enable-source-maps']);
    assert.deepEqual(splitNodeOptions('--import "./my dir/instr.mjs" --title="a \\"b\\""'), ['--import', './my dir/instr.mjs', '--title=a "b"']);
    assert.deepEqual(splitNodeOptions('""'), ['']);
    assert.throws(() => splitNodeOptions('--import "./x'), /double quote is not closed/);
  });

  test('only options NODE_OPTIONS accepts', () => {
    for (const ok of ['', '--import ./instr.mjs', '--import=./instr.mjs -r ./pre.cjs', '--max-old-space-size=512 --enable-source-maps']) {
      assert.equal(nodeOptionsProblem(ok), undefined, ok);
    }
    assert.match(nodeOptionsProblem('--eval 1')!, /--eval is not an option Node.js accepts in NODE_OPTIONS/);
    assert.match(nodeOptionsProblem('--improt ./x.mjs')!, /--improt/);
    assert.match(nodeOptionsProblem('--import ./x.mjs --')!, /-- is not/);
    assert.match(nodeOptionsProblem('--import "./x.mjs')!, /not closed/);
  });
});
