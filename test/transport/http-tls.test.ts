import { writeFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError } from '../../src/errors.js';
import { http } from '../../src/transport/http.js';
import { resolveTls, tlsOptions, type TlsSettings } from '../../src/transport/tls.js';
import { Secrets } from '../../src/util/secrets.js';
import { hasOpenssl, makeTestPki, startHttps, type TestPki } from '../helpers/tls.js';

const has = hasOpenssl();

describe.skipIf(!has)('the http door over HTTPS (tls option)', () => {
  let pki: TestPki;
  let plain: Awaited<ReturnType<typeof startHttps>>;
  let mutual: Awaited<ReturnType<typeof startHttps>>;
  /** Client certificate CNs the mutual-TLS server handled a request for. */
  const clients: string[] = [];
  const opened: TlsSettings[] = [];

  beforeAll(async () => {
    pki = makeTestPki();
    plain = await startHttps({ key: pki.serverKey, cert: pki.serverCert }, (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, path: req.url }));
    });
    mutual = await startHttps({ key: pki.serverKey, cert: pki.serverCert, ca: pki.clientCert, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      clients.push(String((req.socket as TLSSocket).getPeerCertificate().subject?.CN));
      res.end('hello client');
    });
  });
  afterAll(async () => {
    await Promise.all(opened.map((t) => t.close()));
    await plain?.stop();
    await mutual?.stop();
    pki?.cleanup();
  });

  function settings(raw: unknown, env: Record<string, string> = {}): TlsSettings {
    const t = resolveTls(tlsOptions.parse(raw), { dir: pki.dir, secrets: new Secrets(pki.dir, env) })!;
    opened.push(t);
    return t;
  }

  it('without tls: a self-signed certificate fails clearly, naming the URL (no query), the problem and tls.ca / insecureSkipVerify', async () => {
    const err = await http(`${plain.url}/status?token=s3cret-query`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    const msg = (err as Error).message;
    expect(msg).toBe(
      `GET ${plain.url}/status: TLS: the server's certificate is not trusted: self-signed certificate (DEPTH_ZERO_SELF_SIGNED_CERT); ` +
        'trust its CA with tls: { ca: CA.pem } (a PEM file, relative to the playbook), or tls: { insecureSkipVerify: true } in a lab',
    );
    expect(msg).not.toContain('s3cret-query');
    expect((err as ProviderError).retryable).toBe(false); // another attempt cannot fix a certificate
  });

  it('tls.ca: the server certificate is trusted and the call goes through; a CA that did not sign it is named', async () => {
    const res = await http(`${plain.url}/status`, { tls: settings({ ca: 'server.pem' }) });
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ ok: true, path: '/status' });
    // a list of files, the first unrelated: still trusted
    expect((await http(`${plain.url}/list`, { tls: settings({ ca: ['other.pem', 'server.pem'] }) })).status).toBe(200);

    const err = await http(`${plain.url}/status`, { tls: settings({ ca: 'other.pem' }) }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(
      /^GET https:\/\/127\.0\.0\.1:\d+\/status: TLS: the server's certificate is not trusted: self-signed certificate \(DEPTH_ZERO_SELF_SIGNED_CERT\); tls\.ca \(other\.pem\) does not hold the CA that signed it/,
    );
  });

  it('insecureSkipVerify: any certificate is accepted, with one warning per provider (its settings), not per call', async () => {
    const tls = settings({ insecureSkipVerify: true });
    const lines: string[] = [];
    const log = (l: string) => void lines.push(l);
    expect((await http(`${plain.url}/a`, { tls, log })).status).toBe(200);
    expect((await http(`${plain.url}/b?x=1`, { tls, log })).status).toBe(200);
    expect(lines).toEqual([
      `warning: tls.insecureSkipVerify is true: the certificate of ${plain.url} is not checked (anyone on the path can read and change these calls, credentials included)`,
    ]);
    // another provider's settings warn on their own
    const other: string[] = [];
    await http(`${plain.url}/c`, { tls: settings({ insecureSkipVerify: true }), log: (l) => void other.push(l) });
    expect(other).toHaveLength(1);
    // tls with only a CA never warns
    const quiet: string[] = [];
    await http(`${plain.url}/d`, { tls: settings({ ca: 'server.pem' }), log: (l) => void quiet.push(l) });
    expect(quiet).toEqual([]);
  });

  it('mutual TLS: the server that requires a client certificate accepts tls.cert + tls.key and rejects its absence', async () => {
    clients.length = 0;
    const res = await http(`${mutual.url}/hello`, { tls: settings({ ca: 'server.pem', cert: 'client.pem', key: { file: 'client.key' } }) });
    expect(res.status).toBe(200);
    expect(res.text).toBe('hello client');
    expect(clients).toEqual(['gw-client']);

    // the key from an env var works the same
    const viaEnv = settings({ ca: 'server.pem', cert: 'client.pem', key: { env: 'GW_TEST_CLIENT_KEY' } }, { GW_TEST_CLIENT_KEY: pki.clientKey });
    expect((await http(`${mutual.url}/hello`, { tls: viaEnv })).status).toBe(200);
    expect(clients).toEqual(['gw-client', 'gw-client']);

    const err = await http(`${mutual.url}/hello`, { tls: settings({ ca: 'server.pem' }) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as Error).message).toMatch(new RegExp(`^GET ${mutual.url}/hello: .*set tls\\.cert and tls\\.key`));
    expect(clients).toHaveLength(2); // the request without a certificate never reached the handler
  });

  it('resolveTls reads the files once, and names the key of a missing, non-PEM or mismatched file', () => {
    const t = () => ({ dir: pki.dir, secrets: new Secrets(pki.dir, {}) });
    expect(() => resolveTls(tlsOptions.parse({ ca: 'missing.pem' }), t())).toThrow('tls.ca: cannot read missing.pem (no such file)');
    expect(() => resolveTls(tlsOptions.parse({ ca: ['server.pem', 'nope.pem'] }), t())).toThrow('tls.ca[1]: cannot read nope.pem (no such file)');
    writeFileSync(`${pki.dir}/garbage.pem`, 'not a certificate\n');
    expect(() => resolveTls(tlsOptions.parse({ ca: 'garbage.pem' }), t())).toThrow(/^tls\.ca: garbage\.pem holds no PEM certificate/);
    expect(() => resolveTls(tlsOptions.parse({ cert: 'client.pem', key: { file: 'gone.key' } }), t())).toThrow('tls.key: secret file gone.key cannot be read');
    expect(() => resolveTls(tlsOptions.parse({ cert: 'client.pem', key: { file: 'server.key' } }), t())).toThrow(
      'tls.key does not belong to the certificate in tls.cert (client.pem)',
    );
    expect(() => resolveTls(tlsOptions.parse({ cert: 'client.pem', key: { file: 'client.pem' } }), t())).toThrow(
      /^tls\.key: not a usable unencrypted PEM private key/,
    );
    // nothing asked beyond the defaults: no settings (global fetch)
    expect(resolveTls(tlsOptions.parse({}), t())).toBeUndefined();
  });

  it('the client key is a secret: masked, and not in the settings when printed or serialised', () => {
    const secrets = new Secrets(pki.dir, {});
    const tls = resolveTls(tlsOptions.parse({ cert: 'client.pem', key: { file: 'client.key' } }), { dir: pki.dir, secrets })!;
    opened.push(tls);
    const keyText = pki.clientKey.replace(/\r?\n$/, '');
    expect(secrets.mask(`oops ${keyText}`)).toBe('oops ***');
    const body = keyText.split('\n')[1]!;
    expect(JSON.stringify(tls)).not.toContain(body);
    expect(String(Object.values(tls))).not.toContain(body);
  });

  it('the schema is strict and checks what goes together', () => {
    expect(tlsOptions.safeParse({ ca: 'a.pem', verify: false }).success).toBe(false);
    expect(tlsOptions.safeParse({ key: 'plain-key-text', cert: 'c.pem' }).success).toBe(false); // keys are secret references
    const issues = (raw: unknown) => {
      const r = tlsOptions.safeParse(raw);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(issues({ cert: 'c.pem' })).toEqual(['key: a client certificate (cert) needs its key: key: { file: PATH } or { env: NAME }']);
    expect(issues({ key: { env: 'K' } })).toEqual(['cert: a client key needs its certificate: cert: PATH.pem']);
    expect(issues({ ca: 'a.pem', insecureSkipVerify: true })).toEqual(['ca: ca is never checked when insecureSkipVerify is true: keep one of them']);
    expect(tlsOptions.parse({ ca: ['a.pem'] })).toEqual({ ca: ['a.pem'], insecureSkipVerify: false });
  });
});
