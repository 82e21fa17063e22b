/**
 * A certificate and its key, read from PEM files and checked the way a handshake would use
 * them: readable, each certificate of the chain parsed, the key the certificate's own, the
 * certificate in date, and accepted by OpenSSL as a context. The master checks every pair
 * before any worker serves it: at start, at a HUP and when the files change.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { ResolvedConfig } from '../config/settings.js';
import { CorralError } from '../errors.js';

/** A certificate this close to its end (or closer) is warned about at start, at each swap and by `corral check`. */
const EXPIRY_WARNING_DAYS = 14;
const DAY_MS = 86_400_000;

/** Where the pair is read from (absolute paths). */
export interface TlsFiles {
  cert: string;
  key: string;
  /** The CAs that sign client certificates (mutual TLS); undefined: no client certificate is asked for. */
  clientCa: string | undefined;
}

/** A checked pair: the bytes the workers get, and what the logs and /metrics say of it. */
export interface TlsPair {
  cert: string;
  key: string;
  clientCa: string | undefined;
  /** The leaf certificate's subject, one line ("CN=example.com"). */
  subject: string;
  /** Hexadecimal, as openssl prints it. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** Certificates in the chain file, the leaf included. */
  chainLength: number;
}

/**
 * The files the settings name, resolved against `cwd`; undefined when TLS is off. A
 * half-given configuration (a key without a certificate, tls-bind without either) is a
 * configuration error.
 */
export function tlsFiles(cfg: Pick<ResolvedConfig, 'tlsCert' | 'tlsKey' | 'tlsClientCa' | 'tlsBind'>, cwd: string): TlsFiles | undefined {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(cwd, p));
  if (cfg.tlsCert === undefined && cfg.tlsKey === undefined) {
    const needs = cfg.tlsBind.length > 0 ? 'tls-bind' : cfg.tlsClientCa !== undefined ? 'tls-client-ca' : undefined;
    if (needs) throw new CorralError('E_CONFIG_VALUE', `${needs} is set but tls-cert and tls-key are not: TLS needs a certificate and its key`);
    return undefined;
  }
  if (cfg.tlsCert === undefined) throw new CorralError('E_CONFIG_VALUE', 'tls-key is set but tls-cert is not: TLS needs a certificate and its key');
  if (cfg.tlsKey === undefined) throw new CorralError('E_CONFIG_VALUE', 'tls-cert is set but tls-key is not: TLS needs a certificate and its key');
  return { cert: abs(cfg.tlsCert), key: abs(cfg.tlsKey), clientCa: cfg.tlsClientCa === undefined ? undefined : abs(cfg.tlsClientCa) };
}

function readPem(path: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file'
      : code === 'EACCES' || code === 'EPERM' ? `permission denied for uid ${process.getuid?.() ?? '?'} that corral runs as`
        : code === 'EISDIR' ? 'a directory, not a file'
          : String(code ?? (err as Error).message);
    throw new CorralError('E_TLS_FILE', `${what} ${path} cannot be read: ${why}`);
  }
  if (!text.includes('-----BEGIN ')) throw new CorralError('E_TLS_FILE', `${what} ${path} is not a PEM file (no -----BEGIN line)`);
  return text;
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate of a PEM file, parsed; the file must hold at least one. */
function certificates(pem: string, path: string, what: string): X509Certificate[] {
  const blocks = pem.match(CERT_BLOCK) ?? [];
  if (blocks.length === 0) throw new CorralError('E_TLS_FILE', `${what} ${path} holds no certificate (no -----BEGIN CERTIFICATE----- block)`);
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (err) {
      throw new CorralError('E_TLS_CERT', `${what} ${path}: certificate ${i + 1} of ${blocks.length} cannot be parsed (${(err as Error).message})`);
    }
  });
}

function privateKey(pem: string, path: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (err) {
    const msg = (err as Error).message;
    const hint = /passphrase|encrypted/i.test(msg) || pem.includes('ENCRYPTED') ? ' (an encrypted key: corral needs it unencrypted, readable only by its user)' : '';
    throw new CorralError('E_TLS_FILE', `tls-key ${path} holds no usable private key${hint}: ${msg}`);
  }
}

/** The subject on one line, as logs and the metric's label show it. */
function subjectLine(c: X509Certificate): string {
  return c.subject.split('\n').filter((s) => s !== '').join(', ');
}

/**
 * Reads and checks the pair named by `files`; throws E_TLS_FILE (a file missing, unreadable
 * or not PEM) or E_TLS_CERT (the pair is not usable: a key of another certificate, expired,
 * a chain that cannot be parsed), naming the file and what is wrong.
 */
export function loadPair(files: TlsFiles, now = Date.now()): TlsPair {
  const cert = readPem(files.cert, 'tls-cert');
  const key = readPem(files.key, 'tls-key');
  const clientCa = files.clientCa === undefined ? undefined : readPem(files.clientCa, 'tls-client-ca');
  const chain = certificates(cert, files.cert, 'tls-cert');
  const leaf = chain[0]!;
  const k = privateKey(key, files.key);
  if (!leaf.checkPrivateKey(k)) {
    throw new CorralError('E_TLS_CERT', `tls-key ${files.key} is not the key of the certificate in tls-cert ${files.cert} (${subjectLine(leaf)}, serial ${leaf.serialNumber}): the two files are of different pairs`);
  }
  const notAfter = new Date(leaf.validTo);
  if (notAfter.getTime() <= now) {
    throw new CorralError('E_TLS_CERT', `the certificate in tls-cert ${files.cert} (${subjectLine(leaf)}, serial ${leaf.serialNumber}) expired at ${notAfter.toISOString()}`);
  }
  if (clientCa !== undefined) certificates(clientCa, files.clientCa!, 'tls-client-ca');
  try {
    createSecureContext({ cert, key, ca: clientCa });
  } catch (err) {
    throw new CorralError('E_TLS_CERT', `tls-cert ${files.cert} and tls-key ${files.key} are refused by OpenSSL: ${(err as Error).message}`);
  }
  return {
    cert, key, clientCa,
    subject: subjectLine(leaf),
    serial: leaf.serialNumber,
    notBefore: new Date(leaf.validFrom),
    notAfter,
    chainLength: chain.length,
  };
}

/** One line on the pair for the logs and `corral check`. */
export function describePair(p: TlsPair): string {
  return `${p.subject}, serial ${p.serial}, valid until ${p.notAfter.toISOString()}${p.chainLength > 1 ? `, chain of ${p.chainLength}` : ''}`;
}

/** A warning when the certificate ends within EXPIRY_WARNING_DAYS or is not valid yet; undefined otherwise. */
export function dateWarning(p: TlsPair, now = Date.now()): string | undefined {
  if (p.notBefore.getTime() > now) return `the certificate (${p.subject}) is not valid before ${p.notBefore.toISOString()}: clients will refuse it until then (is the clock right?)`;
  const left = p.notAfter.getTime() - now;
  if (left <= EXPIRY_WARNING_DAYS * DAY_MS) return `the certificate (${p.subject}) expires in ${(left / DAY_MS).toFixed(1)} day(s), at ${p.notAfter.toISOString()}: renew it`;
  return undefined;
}
