/**
 * The `tls:` option of everything that talks HTTP (providers, monitors, the http gate), one shape everywhere:
 *
 *   tls:
 *     ca: ./certs/f5-ca.pem             # PEM file(s) to trust (relative to the playbook), besides the system CAs
 *     insecureSkipVerify: false         # true: accept any certificate (a warning is logged once per provider)
 *     cert: ./certs/client.pem          # client certificate (mutual TLS) ...
 *     key: { file: ./certs/client.key } # ... and its key, a secret reference like every other secret
 *
 * Files are checked when the playbook is loaded (a missing or unreadable one is a playbook error at its key) and
 * read once, when the provider is created (`resolveTls`); the http door (./http.ts) applies the result per call.
 *
 * Why the `undici` package: Node 20's global fetch takes no CA, client certificate or rejectUnauthorized per request
 * (only process-wide, through NODE_EXTRA_CA_CERTS or NODE_TLS_REJECT_UNAUTHORIZED). undici is the fetch Node itself
 * bundles; from the package, its `fetch` takes a `dispatcher`, and an `Agent` with `connect: { ca, cert, key,
 * rejectUnauthorized }` carries one provider's TLS settings with its own connection pool, while the calls keep
 * exactly the fetch semantics the door already has (redirects, bodies, AbortSignal, error causes). node:https would
 * mean re-writing all of that by hand. Major 7 is the last one that runs on Node 20. It is loaded on first use only,
 * so playbooks without `tls` (and CLI start-up) never pay for it.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as nodeTls from 'node:tls';
import type { Agent, fetch as undiciFetch } from 'undici';
import { ProviderError } from '../errors.js';
import { type SecretRef, type Secrets } from '../util/secrets.js';
import { caList, fsProblem, type TlsOptions } from '../util/tls-options.js';

export { tlsFileIssues, tlsOptions, type TlsOptions } from '../util/tls-options.js';

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function readPem(dir: string, file: string, key: string): string {
  try {
    return readFileSync(resolve(dir, file), 'utf8');
  } catch (err) {
    throw new ProviderError(`${key}: cannot read ${file} (${fsProblem(err)})`, false);
  }
}

/** The certificates of a PEM file, each checked; a file without one (DER, a key, garbage) is an error naming the key. */
function certificates(text: string, file: string, key: string): string[] {
  const blocks = text.match(CERT_BLOCK) ?? [];
  if (blocks.length === 0)
    throw new ProviderError(
      `${key}: ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----); convert DER with: openssl x509 -inform der -in FILE -out FILE.pem`,
      false,
    );
  blocks.forEach((b, i) => {
    try {
      new X509Certificate(b);
    } catch (err) {
      throw new ProviderError(`${key}: certificate ${i + 1} in ${file} cannot be read: ${(err as Error).message}`, false);
    }
  });
  return blocks;
}

/**
 * What Node trusts by default: its CA store plus NODE_EXTRA_CA_CERTS (a `ca` option replaces that list, so it is
 * rebuilt here). Node 22.15+ tells it directly; on Node 20 the extra file is read again (Node warned already if
 * it cannot be read).
 */
function defaultCAs(): readonly string[] {
  const get = (nodeTls as { getCACertificates?: (type: string) => string[] }).getCACertificates;
  if (get) return get('default');
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  if (!extra) return nodeTls.rootCertificates;
  try {
    return [...nodeTls.rootCertificates, ...(readFileSync(extra, 'utf8').match(CERT_BLOCK) ?? [])];
  } catch {
    return nodeTls.rootCertificates;
  }
}

interface TlsMaterial {
  caFiles: string[];
  ca?: string[];
  cert?: string;
  certFile?: string;
  insecure: boolean;
}

/**
 * One provider's resolved TLS settings: the certificates read, and (on first use) the undici Agent that applies
 * them. The client key lives in a private field only, so that printing or serialising this object never shows it.
 */
export class TlsSettings {
  readonly #key?: string;
  #client?: Promise<{ agent: Agent; fetch: typeof undiciFetch }>;
  #warned = false;

  constructor(
    private readonly m: TlsMaterial,
    key?: string,
  ) {
    this.#key = key;
  }

  get insecure(): boolean {
    return this.m.insecure;
  }
  /** The `tls.ca` files, as written in the playbook. */
  get caFiles(): readonly string[] {
    return this.m.caFiles;
  }
  get clientCertFile(): string | undefined {
    return this.m.certFile;
  }

  /** With insecureSkipVerify: one warning line per provider (the first call that has somewhere to log it). */
  warnOnce(url: string, log?: (line: string) => void): void {
    if (!this.m.insecure || this.#warned || !log || !/^https:/i.test(url)) return;
    this.#warned = true;
    let origin = url;
    try {
      origin = new URL(url).origin;
    } catch {
      origin = url.split('?')[0]!;
    }
    log(
      `warning: tls.insecureSkipVerify is true: the certificate of ${origin} is not checked (anyone on the path can read and change these calls, credentials included)`,
    );
  }

  private client(): Promise<{ agent: Agent; fetch: typeof undiciFetch }> {
    this.#client ??= import('undici').then(({ Agent, fetch }) => {
      // One secure context for all connections (tls.connect would otherwise parse the ~150 CAs again for each).
      // `ca` replaces Node's list: keep the default CAs and add the playbook's.
      const secureContext = nodeTls.createSecureContext({
        ca: this.m.ca ? [...defaultCAs(), ...this.m.ca] : undefined,
        cert: this.m.cert,
        key: this.#key,
      });
      const agent = new Agent({ connect: { secureContext, rejectUnauthorized: !this.m.insecure } });
      return { agent, fetch };
    });
    return this.#client;
  }

  /** fetch through this provider's Agent (same arguments and answer as the global fetch, for what the door uses). */
  async fetch(url: string, init: { method: string; headers: Record<string, string>; body?: string; signal: AbortSignal }): Promise<Response> {
    const { agent, fetch } = await this.client();
    return (await fetch(url, { ...init, dispatcher: agent })) as unknown as Response;
  }

  /** Closes the Agent's connections (idle ones do not keep the process alive; this is for tidy shutdowns and tests). */
  async close(): Promise<void> {
    const c = this.#client;
    this.#client = undefined;
    if (c) await (await c).agent.close().catch(() => undefined);
  }
}

/**
 * Reads the files of a `tls` option (once: call it when the provider is created) and returns the settings the http
 * door applies, or undefined when the option asks for nothing beyond the defaults. Problems are ProviderErrors
 * naming the key (`tls.ca: …`); the client key is resolved through Secrets, so its value is masked everywhere.
 */
export function resolveTls(o: TlsOptions | undefined, env: { dir: string; secrets: Pick<Secrets, 'resolve'> }): TlsSettings | undefined {
  if (!o) return undefined;
  const files = caList(o);
  if (files.length === 0 && o.cert === undefined && !o.insecureSkipVerify) return undefined;
  const ca = files.length
    ? files.flatMap((f, i) => certificates(readPem(env.dir, f, files.length > 1 ? `tls.ca[${i}]` : 'tls.ca'), f, files.length > 1 ? `tls.ca[${i}]` : 'tls.ca'))
    : undefined;
  let cert: string | undefined;
  let key: string | undefined;
  if (o.cert !== undefined && o.key !== undefined) {
    cert = readPem(env.dir, o.cert, 'tls.cert');
    const leaf = certificates(cert, o.cert, 'tls.cert')[0]!;
    const ref: SecretRef = o.key;
    try {
      key = env.secrets.resolve(ref);
    } catch (err) {
      throw new ProviderError(`tls.key: ${(err as Error).message}`, false);
    }
    let matches: boolean;
    try {
      matches = new X509Certificate(leaf).checkPrivateKey(createPrivateKey(key));
    } catch (err) {
      // The library's message names the problem (encrypted, unsupported format), never the key's content.
      throw new ProviderError(`tls.key: not a usable unencrypted PEM private key (${(err as Error).message})`, false);
    }
    if (!matches) throw new ProviderError(`tls.key does not belong to the certificate in tls.cert (${o.cert})`, false);
  }
  return new TlsSettings({ caFiles: files, ca, cert, certFile: o.cert, insecure: o.insecureSkipVerify }, key);
}

/** OpenSSL's verification results that mean "no trusted CA vouches for this certificate". */
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
]);
const CLIENT_CERT_REFUSED = new Set([
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE',
  'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED',
]);

/** The first coded error in a fetch error's cause chain. */
function codedCause(err: unknown): { code: string; message: string } | undefined {
  let e = err as { code?: unknown; message?: string; cause?: unknown } | undefined;
  for (let i = 0; e && i < 5; i++, e = e.cause as typeof e) {
    if (typeof e.code === 'string') return { code: e.code, message: e.message ?? '' };
  }
  return undefined;
}

const LAB = 'or tls: { insecureSkipVerify: true } in a lab';

/**
 * A clear account of a TLS failure of `url` (the certificate problem and which `tls` key fixes it), or undefined
 * when the error is not about TLS. `retryable` is false where another attempt cannot help.
 */
export function describeTlsFailure(err: unknown, url: string, tls: TlsSettings | undefined): { reason: string; retryable: boolean } | undefined {
  const c = codedCause(err);
  if (!c) return undefined;
  const what = `${c.message} (${c.code})`;
  if (UNTRUSTED.has(c.code)) {
    const fix = tls?.caFiles.length
      ? `tls.ca (${tls.caFiles.join(', ')}) does not hold the CA that signed it: give that CA's PEM file`
      : `trust its CA with tls: { ca: CA.pem } (a PEM file, relative to the playbook), ${LAB}`;
    return { reason: `TLS: the server's certificate is not trusted: ${what}; ${fix}`, retryable: false };
  }
  if (c.code === 'CERT_HAS_EXPIRED' || c.code === 'CERT_NOT_YET_VALID') {
    return {
      reason: `TLS: the server's certificate is out of its validity period: ${what}; renew it on the server or check this machine's clock`,
      retryable: false,
    };
  }
  if (c.code === 'ERR_TLS_CERT_ALTNAME_INVALID' || c.code === 'HOSTNAME_MISMATCH') {
    return {
      reason: `TLS: the server's certificate is not issued for this host name: ${what}; use a name the certificate lists in the URL, ${LAB}`,
      retryable: false,
    };
  }
  if (c.code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' || (c.code === 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE' && !tls?.clientCertFile)) {
    return { reason: `TLS: the server requires a client certificate: ${what}; set tls.cert and tls.key`, retryable: false };
  }
  if (CLIENT_CERT_REFUSED.has(c.code)) {
    const which = tls?.clientCertFile
      ? `the client certificate ${tls.clientCertFile} (tls.cert)`
      : 'the connection (no client certificate was sent: tls.cert and tls.key)';
    return { reason: `TLS: the server refused ${which}: ${what}`, retryable: false };
  }
  if (/^ERR_(SSL|TLS)_/.test(c.code) || /CERT/.test(c.code)) return { reason: `TLS: ${what}`, retryable: true };
  // With TLS 1.3 a server that rejects the client's certificate (or its absence) only closes the connection after
  // the handshake: all the client sees is "other side closed".
  if (url.startsWith('https:') && (c.code === 'UND_ERR_SOCKET' || c.code === 'ECONNRESET')) {
    const hint = tls?.clientCertFile
      ? `if the server checks client certificates, it may have refused ${tls.clientCertFile} (tls.cert)`
      : 'if the server requires a client certificate, set tls.cert and tls.key';
    return { reason: `${c.message || c.code} (${c.code}); ${hint}`, retryable: true };
  }
  return undefined;
}
