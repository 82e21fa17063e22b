import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfigFile } from '../../src/config/file.js';
import { resolveConfig, describeSource } from '../../src/config/resolve.js';
import { SETTING_NAMES, envName, kebab } from '../../src/config/settings.js';
import { bytes, integer, seconds, fileMode, boolean } from '../../src/config/validators.js';
import { CorralError } from '../../src/errors.js';

function dir(files: Record<string, string> = {}): string {
  const d = mkdtempSync(join(tmpdir(), 'corral-cfg-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(d, name), text);
  return d;
}

async function rejectsWith(p: Promise<unknown>, code: string, re: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof CorralError, String(err));
    assert.equal(err.code, code);
    assert.match(err.message, re);
    assert.equal(err.exitCode, 78);
    return true;
  });
}

describe('validators', () => {
  test('integers, seconds, sizes, modes, booleans', () => {
    assert.equal(integer(1).parse('4'), 4);
    assert.throws(() => integer(1).parse('four'), /"four" is not valid: must be a whole number ≥ 1/);
    assert.throws(() => integer(1).parse('2.5'), /must be a whole number/);
    assert.equal(seconds(1).parse('1.5'), 1.5);
    assert.throws(() => seconds(1).parse('-1'), /"-1" is not valid: must be a number of seconds from 1/);
    assert.equal(seconds(1, { zeroDisables: true }).parse('0'), 0);
    assert.equal(bytes().parse('512M'), 512 * 1024 * 1024);
    assert.equal(bytes().parse('1g'), 1024 ** 3);
    assert.equal(bytes().parse(4096), 4096);
    assert.throws(() => bytes().parse('lots'), /must be a size like 512M/);
    assert.equal(bytes({ max: 1024 }).parse('1K'), 1024);
    assert.throws(() => bytes({ min: 1, max: 1024 }).parse('1025'), /"1025" is not valid: .*at least 1 and at most 1K$/);
    assert.equal(fileMode().parse('0660'), 0o660);
    assert.throws(() => fileMode().parse('999'), /octal file mode/);
    assert.equal(boolean().parse('yes'), true);
    assert.equal(boolean().parse('off'), false);
  });
});

describe('layers', () => {
  test('defaults < config file < env file < environment < command line', async () => {
    const cwd = dir({
      'corral.config.json': JSON.stringify({ workers: 2, timeout: 10, gracefulTimeout: 5, maxRequests: 7 }),
      '.env': 'CORRAL_TIMEOUT=11\nCORRAL_GRACEFUL_TIMEOUT=6\n',
    });
    const r = await resolveConfig({ cli: { timeout: '13' }, env: { CORRAL_GRACEFUL_TIMEOUT: '12' }, cwd });
    assert.deepEqual(r.config.workers, { min: 2, max: 2 });
    assert.equal(describeSource(r.sources.workers), `config file ${join(cwd, 'corral.config.json')}`);
    assert.equal(r.config.maxRequests, 7);
    assert.equal(r.config.timeout, 13);
    assert.equal(describeSource(r.sources.timeout), 'command line --timeout');
    assert.equal(r.config.gracefulTimeout, 12, 'the real environment beats .env');
    assert.equal(describeSource(r.sources.gracefulTimeout), 'env CORRAL_GRACEFUL_TIMEOUT');
    assert.equal(r.config.keepAliveTimeout, 75);
    assert.equal(describeSource(r.sources.keepAliveTimeout), 'default');
  });

  test('.env values reach the layer when the environment lacks them', async () => {
    const cwd = dir({ '.env': 'CORRAL_WORKERS=5\nAPP_SECRET=x\n' });
    const r = await resolveConfig({ cli: {}, env: {}, cwd });
    assert.deepEqual(r.config.workers, { min: 5, max: 5 });
    assert.equal(describeSource(r.sources.workers), `env file CORRAL_WORKERS in ${join(cwd, '.env')}`);
    assert.equal(r.envFileVars.APP_SECRET, 'x');
  });

  test('PORT and WEB_CONCURRENCY are honoured below their CORRAL_ names', async () => {
    const cwd = dir();
    const r = await resolveConfig({ cli: {}, env: { PORT: '9000', WEB_CONCURRENCY: '3' }, cwd });
    assert.deepEqual(r.config.bind, ['0.0.0.0:9000']);
    assert.deepEqual(r.config.workers, { min: 3, max: 3 });
    const r2 = await resolveConfig({ cli: {}, env: { PORT: '9000', CORRAL_BIND: '127.0.0.1:1,unix:/tmp/x.sock', WEB_CONCURRENCY: '3', CORRAL_WORKERS: '4' }, cwd });
    assert.deepEqual(r2.config.bind, ['127.0.0.1:1', 'unix:/tmp/x.sock']);
    assert.deepEqual(r2.config.workers, { min: 4, max: 4 });
    await rejectsWith(resolveConfig({ cli: {}, env: { PORT: 'http' }, cwd }), 'E_CONFIG_VALUE', /bind \(from env PORT\): "http" is not valid/);
  });

  test('workers as a range: the same syntax on the command line, in the environment and in a config file', async () => {
    assert.deepEqual((await resolveConfig({ cli: { workers: '2..8' }, env: {}, cwd: dir() })).config.workers, { min: 2, max: 8 });
    assert.deepEqual((await resolveConfig({ cli: {}, env: { CORRAL_WORKERS: '1..3' }, cwd: dir() })).config.workers, { min: 1, max: 3 });
    const json = dir({ 'corral.config.json': JSON.stringify({ workers: '2..4' }) });
    assert.deepEqual((await resolveConfig({ cli: {}, env: {}, cwd: json })).config.workers, { min: 2, max: 4 });
    const mjs = dir({ 'corral.config.mjs': 'export default { workers: { min: 3, max: 6 } }' });
    assert.deepEqual((await resolveConfig({ cli: {}, env: {}, cwd: mjs })).config.workers, { min: 3, max: 6 });
  });

  test('LOGS_DIRECTORY from systemd sets log-dir', async () => {
    const r = await resolveConfig({ cli: {}, env: { LOGS_DIRECTORY: '/var/log/app:/var/log/other' }, cwd: dir() });
    assert.equal(r.config.logDir, '/var/log/app');
  });

  test('invalid values name the setting, its source, the value and the rule', async () => {
    const cwd = dir();
    await rejectsWith(resolveConfig({ cli: {}, env: { CORRAL_WORKERS: 'four' }, cwd }), 'E_CONFIG_VALUE',
      /^workers \(from env CORRAL_WORKERS\): "four" is not valid: must be a whole number from 1 to 1024, or a range MIN\.\.MAX such as 2\.\.8$/);
    await rejectsWith(resolveConfig({ cli: { workers: '8..2' }, env: {}, cwd }), 'E_CONFIG_VALUE',
      /^workers \(from command line --workers\): "8\.\.2" is not valid: the minimum \(8\) is above the maximum \(2\); write MIN\.\.MAX$/);
    await rejectsWith(resolveConfig({ cli: {}, env: { WEB_CONCURRENCY: '0' }, cwd }), 'E_CONFIG_VALUE',
      /^workers \(from env WEB_CONCURRENCY\): "0" is not valid: the number of workers must be from 1 to 1024$/);
    await rejectsWith(resolveConfig({ cli: { timeout: '-1' }, env: {}, cwd }), 'E_CONFIG_VALUE',
      /^timeout \(from command line --timeout\): "-1" is not valid: must be a number of seconds ≥ 1 \(0 disables\)$/);
    await rejectsWith(resolveConfig({ cli: { bind: ['localhost'] }, env: {}, cwd }), 'E_CONFIG_VALUE', /bind .*has no port/);
    await rejectsWith(resolveConfig({ cli: { headersTimeout: '400' }, env: {}, cwd }), 'E_CONFIG_VALUE', /headers-timeout .*must not exceed request-timeout \(300 s\)/);
  });

  test('unknown keys in a config file and unknown CORRAL_ variables are rejected with a suggestion', async () => {
    await rejectsWith(resolveConfig({ cli: {}, env: {}, cwd: dir({ 'corral.config.json': '{"wokers": 2}' }) }), 'E_CONFIG_UNKNOWN',
      /unknown setting 'wokers'; did you mean 'workers'\?/);
    await rejectsWith(resolveConfig({ cli: {}, env: { CORRAL_TIMEOUTT: '3' }, cwd: dir() }), 'E_CONFIG_UNKNOWN',
      /unknown setting CORRAL_TIMEOUTT in the env; did you mean CORRAL_TIMEOUT\?/);
    await rejectsWith(resolveConfig({ cli: {}, env: {}, cwd: dir({ 'corral.config.json': '{"config": "x"}' }) }), 'E_CONFIG_UNKNOWN',
      /'config' cannot be set in a config file/);
  });

  test('an unreadable or malformed config file is a config error', async () => {
    await rejectsWith(resolveConfig({ cli: { config: 'nope.json' }, env: {}, cwd: dir() }), 'E_CONFIG_FILE', /nope\.json does not exist/);
    await rejectsWith(resolveConfig({ cli: {}, env: {}, cwd: dir({ 'corral.config.json': '{ workers: ' }) }), 'E_CONFIG_FILE', /cannot be loaded: .*JSON/);
    await rejectsWith(resolveConfig({ cli: {}, env: {}, cwd: dir({ 'corral.config.mjs': 'export default [1]' }) }), 'E_CONFIG_FILE', /must export an object of settings \(got an array\)/);
    await rejectsWith(resolveConfig({ cli: { envFile: 'missing.env' }, env: {}, cwd: dir() }), 'E_ENV_FILE', /missing\.env cannot be read \(ENOENT\)/);
  });

  test('max-header-size is bounded above by 1M', async () => {
    const cwd = dir();
    assert.equal((await resolveConfig({ cli: { maxHeaderSize: '1M' }, env: {}, cwd })).config.maxHeaderSize, 1024 ** 2);
    await rejectsWith(resolveConfig({ cli: { maxHeaderSize: '1G' }, env: {}, cwd }), 'E_CONFIG_VALUE',
      /^max-header-size \(from command line --max-header-size\): "1G" is not valid: .*at most 1M$/);
    await rejectsWith(resolveConfig({ cli: {}, env: { CORRAL_MAX_HEADER_SIZE: String(1024 ** 2 + 1) }, cwd }), 'E_CONFIG_VALUE', /at most 1M/);
  });

  test('a config module that never settles fails within the limit, naming the file and the limit', async () => {
    const hangs = dir({ 'corral.config.mjs': 'export default () => new Promise(() => {})' });
    await rejectsWith(loadConfigFile(join(hangs, 'corral.config.mjs'), 200), 'E_CONFIG_FILE',
      /corral\.config\.mjs did not finish loading within 0\.2 s/);
    const tla = dir({ 'corral.config.mjs': 'await new Promise(() => {}); export default {}' });
    await rejectsWith(loadConfigFile(join(tla, 'corral.config.mjs'), 200), 'E_CONFIG_FILE', /did not finish loading within 0\.2 s/);
    // once fixed, the same file loads (each load imports it afresh)
    writeFileSync(join(tla, 'corral.config.mjs'), 'export default { workers: 2 }');
    assert.deepEqual(await loadConfigFile(join(tla, 'corral.config.mjs'), 200), { workers: 2 });
  });

  test('a config module whose values throw when read is a config error', async () => {
    await rejectsWith(resolveConfig({ cli: {}, env: {}, cwd: dir({ 'corral.config.mjs': 'export default { get workers() { throw new Error("no workers today") } }' }) }),
      'E_CONFIG_FILE', /corral\.config\.mjs cannot be loaded: no workers today$/);
    await rejectsWith(resolveConfig({ cli: {}, env: {}, cwd: dir({ 'corral.config.mjs': 'export default { timeout: { toString() { throw new Error("nope") } } }' }) }),
      'E_CONFIG_VALUE', /^timeout \(from config file .*\): the value cannot be read as a setting \(nope\)$/);
    await rejectsWith(resolveConfig({ cli: {}, env: {}, cwd: dir({ 'corral.config.mjs': 'export default { timeout: Object.create(null) }' }) }),
      'E_CONFIG_VALUE', /^timeout .*cannot be read as a setting/);
    // An object is a range of workers: any other shape says what a range object is.
    await rejectsWith(resolveConfig({ cli: {}, env: {}, cwd: dir({ 'corral.config.mjs': 'export default { workers: Object.create(null) }' }) }),
      'E_CONFIG_VALUE', /^workers \(from config file .*\): \{\} is not valid: a range object has exactly two fields, min and max/);
  });

  test('JS config files may export a function and are re-read fresh each time', async () => {
    const cwd = dir({ 'corral.config.mjs': 'export default async () => ({ workers: 2 })' });
    assert.deepEqual((await resolveConfig({ cli: {}, env: {}, cwd })).config.workers, { min: 2, max: 2 });
    writeFileSync(join(cwd, 'corral.config.mjs'), 'export default { workers: 6 }');
    assert.deepEqual((await resolveConfig({ cli: {}, env: {}, cwd })).config.workers, { min: 6, max: 6 });
    const cjs = dir({ 'corral.config.cjs': 'module.exports = { workers: 3 }' });
    assert.deepEqual((await resolveConfig({ cli: {}, env: {}, cwd: cjs })).config.workers, { min: 3, max: 3 });
    writeFileSync(join(cjs, 'corral.config.cjs'), 'module.exports = { workers: 4 }');
    assert.deepEqual((await resolveConfig({ cli: {}, env: {}, cwd: cjs })).config.workers, { min: 4, max: 4 });
  });

  test('every setting has a kebab flag and a CORRAL_ variable', () => {
    assert.equal(kebab('maxRequestsJitter'), 'max-requests-jitter');
    assert.equal(envName('maxRequestsJitter'), 'CORRAL_MAX_REQUESTS_JITTER');
    assert.equal(new Set(SETTING_NAMES.map(envName)).size, SETTING_NAMES.length);
  });
});
