import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpGate } from '../../src/gates/http.js';
import { makeGateContext, makePlaybook, type TestGateContext } from '../helpers/contexts.js';
import { hasOpenssl, makeTestPki, startHttps, type TestPki } from '../helpers/tls.js';

describe.skipIf(!hasOpenssl())('http gate over HTTPS (tls option)', () => {
  let pki: TestPki;
  let srv: Awaited<ReturnType<typeof startHttps>>;
  let hits = 0;

  beforeAll(async () => {
    pki = makeTestPki();
    srv = await startHttps({ key: pki.serverKey, cert: pki.serverCert }, (_req, res) => {
      hits++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"UP"}');
    });
  });
  afterAll(async () => {
    await srv?.stop();
    pki?.cleanup();
  });

  /** A gate context whose playbook lives in the PKI dir (tls files are relative to it). */
  function ctx(): TestGateContext {
    return { ...makeGateContext(), playbook: makePlaybook({ dir: pki.dir, file: `${pki.dir}/playbook.yml` }) };
  }
  const params = (extra: object) => httpGate.params.parse({ url: `${srv.url}/health`, expect: { json: { '$.status': 'UP' } }, ...extra });

  it('without tls the check fails on the certificate, with the tls.ca hint; with tls.ca it passes', async () => {
    hits = 0;
    const bad = await httpGate.run(ctx(), params({ repeat: 2 }));
    expect(bad.ok).toBe(false);
    expect(bad.observed).toContain(
      `2/2 requests failed; first (request 1): GET ${srv.url}/health: TLS: the server's certificate is not trusted: self-signed certificate`,
    );
    expect(bad.observed).toContain('tls: { ca: CA.pem }');
    expect(hits).toBe(0);

    const good = await httpGate.run(ctx(), params({ repeat: 3, tls: { ca: 'server.pem' } }));
    expect(good).toMatchObject({ ok: true, observed: '3/3 answered as expected' });
    expect(hits).toBe(3);
  });

  it('insecureSkipVerify passes and warns once for the gate entry, across runs', async () => {
    const p = params({ repeat: 2, tls: { insecureSkipVerify: true } });
    const a = ctx();
    const b = ctx();
    expect((await httpGate.run(a, p)).ok).toBe(true);
    expect((await httpGate.run(b, p)).ok).toBe(true);
    expect([...a.lines, ...b.lines].filter((l) => l.startsWith('warning:'))).toEqual([
      `warning: tls.insecureSkipVerify is true: the certificate of ${srv.url} is not checked (anyone on the path can read and change these calls, credentials included)`,
    ]);
  });

  it('a tls file that cannot be read fails the check naming the key', async () => {
    await expect(httpGate.run(ctx(), params({ tls: { ca: 'nowhere.pem' } }))).rejects.toThrow(
      `http check ${srv.url}/health: tls.ca: cannot read nowhere.pem (no such file)`,
    );
  });
});
