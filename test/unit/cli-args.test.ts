import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parsePid, parseTimeout, PID_MAX, TIMEOUT_MAX_S } from '../../src/cli-args.js';
import { CorralError } from '../../src/errors.js';

function refused(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof CorralError && err.code === 'E_CONFIG_VALUE' && re.test(err.message));
}

describe('the PID parser (reload, status)', () => {
  test('a PID is exactly the number written, from 1 (a master in a container) to Linux\'s largest', () => {
    assert.equal(parsePid('1'), 1);
    assert.equal(parsePid('4242'), 4242);
    assert.equal(parsePid('007'), 7);
    assert.equal(parsePid(String(PID_MAX)), 4_194_304);
  });

  test('anything else is refused with the rule, never rounded to another PID', () => {
    const rule = /^PID \(from command line\): ".*" is not valid: must be a whole number from 1 to 4194304/;
    for (const text of ['0', '000', '-1', '+5', '1.0', '1e3', '0x10', '', ' 1', '1 ', 'abc', '4194305', '9007199254740993', '99999999999999999999999']) {
      refused(() => parsePid(text), rule);
    }
  });
});

describe('the --timeout parser (reload, status, health)', () => {
  test('seconds, whole or decimal, as milliseconds', () => {
    assert.equal(parseTimeout('5'), 5000);
    assert.equal(parseTimeout('0.25'), 250);
    assert.equal(parseTimeout('.5'), 500);
    assert.equal(parseTimeout('120'), 120_000);
    assert.equal(parseTimeout('0.0001'), 1, 'never 0, which would time out at once');
  });

  test('zero, negative, not a number, or longer than a timer can wait is refused', () => {
    const rule = new RegExp(`^--timeout \\(from command line\\): ".*" is not valid: must be a number of seconds > 0 and at most ${TIMEOUT_MAX_S}$`);
    for (const text of ['0', '0.0', '-1', 'abc', '', 'Infinity', 'NaN', '1e3', '5s', String(TIMEOUT_MAX_S + 1), '1'.repeat(400)]) {
      refused(() => parseTimeout(text), rule);
    }
  });
});
