/**
 * The one escaping rule of every log line, in every format. A leaf: it imports nothing.
 *
 * Escaped: every character that could end, split or rewrite a line for a line-oriented
 * reader or a terminal — C0 controls (newlines among them), DEL, C1 controls (U+0080-U+009F:
 * NEL U+0085 ends a line for some readers, CSI U+009B starts a terminal control sequence)
 * and the line and paragraph separators U+2028/U+2029. Node reads the bytes 0x80-0xFF of a
 * request line or header as these characters.
 *
 * Written as: `\xHH` for each byte of the character's UTF-8 encoding (nginx's form). The
 * log is written as UTF-8, so these are the bytes the raw character would have put in the
 * file: U+0085 is `\xC2\x85`, U+2028 `\xE2\x80\xA8`. One character never looks like another
 * (a lone `\x85` would read as a byte no UTF-8 file holds alone). JSON has its own syntax
 * for the same set: `\u0085`, `\u2028`, which JSON.parse turns back into the characters.
 */

/** The set, as the body of a regular expression character class: C0, then what JSON.stringify leaves raw. */
const C0 = '\\x00-\\x1f';
const BEYOND_C0 = '\\x7f-\\x9f\\u2028\\u2029';
const LINE_BREAKING = C0 + BEYOND_C0;

const HEX = '0123456789ABCDEF';

/** `\xHH` for each UTF-8 byte of the character. */
function hexEscape(c: string): string {
  const code = c.charCodeAt(0);
  if (code < 0x80) return '\\x' + HEX[code >> 4] + HEX[code & 15];
  let out = '';
  for (const b of Buffer.from(c, 'utf8')) out += '\\x' + HEX[b >> 4] + HEX[b & 15];
  return out;
}

/**
 * An escaper for text formats: the set above, plus `also` (the body of a character class:
 * the characters a format needs escaped as well, such as its quote), each as `\xHH`.
 */
export function textEscaper(also = ''): (s: string) => string {
  const re = new RegExp(`[${also}${LINE_BREAKING}]`, 'g');
  return (s) => s.replace(re, hexEscape);
}

/** Printable ASCII without `"` and `\`: JSON needs no escapes for these strings. */
const JSON_SAFE = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** What JSON.stringify leaves raw of the set (it escapes C0 itself). */
const JSON_RAW = new RegExp(`[${BEYOND_C0}]`);
const JSON_RAW_ALL = new RegExp(`[${BEYOND_C0}]`, 'g');
const uEscape = (c: string) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0');

/** A JSON string literal with every character of the set escaped (JSON.stringify's text otherwise). */
export function jsonString(v: string): string {
  if (JSON_SAFE.test(v)) return '"' + v + '"';
  const s = JSON.stringify(v);
  return JSON_RAW.test(s) ? s.replace(JSON_RAW_ALL, uEscape) : s;
}
