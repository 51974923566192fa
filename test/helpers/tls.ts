import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Certificates made in the test, with the `openssl` command (node:crypto cannot sign a certificate).
 * scripts/setup-test-env.sh installs it. Missing: under CI=true a failure, elsewhere the caller skips.
 */
export function hasOpenssl(): boolean {
  const r = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  if (r.status === 0) return true;
  if (process.env.CI === 'true') throw new Error('openssl is missing (CI=true): install the Debian package openssl (scripts/setup-test-env.sh)');
  return false;
}

export interface TestPki {
  /** Temp dir holding every file below (playbook-relative names are relative to it). */
  dir: string;
  /** A self-signed server certificate for 127.0.0.1 / localhost, and its key. */
  serverCert: string;
  serverKey: string;
  /** Another self-signed certificate: a CA that did not sign the server's. */
  otherCert: string;
  /** A self-signed client certificate (CN gw-client) and its key, for mutual TLS. */
  clientCert: string;
  clientKey: string;
  cleanup(): void;
}

function selfSigned(dir: string, name: string, cn: string, san?: string): void {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(dir, `${name}.key`),
      '-out',
      join(dir, `${name}.pem`),
      '-days',
      '2',
      '-subj',
      `/CN=${cn}`,
      ...(san ? ['-addext', `subjectAltName=${san}`] : []),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
}

/** Files: server.pem/.key, other.pem/.key, client.pem/.key in a fresh temp dir. */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'gw-tls-'));
  selfSigned(dir, 'server', 'graywave-test-server', 'IP:127.0.0.1,DNS:localhost');
  selfSigned(dir, 'other', 'graywave-other-ca');
  selfSigned(dir, 'client', 'gw-client');
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  return {
    dir,
    serverCert: read('server.pem'),
    serverKey: read('server.key'),
    otherCert: read('other.pem'),
    clientCert: read('client.pem'),
    clientKey: read('client.key'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Starts an HTTPS server on 127.0.0.1; `url` is its base (https://127.0.0.1:PORT). */
export async function startHttps(
  options: https.ServerOptions,
  handler: Parameters<typeof https.createServer>[1],
): Promise<{ server: https.Server; url: string; stop(): Promise<void> }> {
  const server = https.createServer(options, handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    server,
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}
