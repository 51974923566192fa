import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nacosRuleOptions, ruleLine, withLine } from '../../src/routing/nacos-rule.js';
import { RoutingRunner } from '../../src/routing/run.js';
import { routingDeps } from './deps.js';
import { hasOpenssl, makeTestPki, startHttps } from '../helpers/tls.js';
import { writeFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * nacos-rule against a server answering the Nacos config-centre shapes of shared/reference/protocols.md §2.5
 * (GET → raw content or 404, POST form → "true", DELETE → "true"; login → accessToken), recording every request.
 */

const configs = new Map<string, string>();
const requests: { method: string; path: string; params: Record<string, string> }[] = [];
let url = '';
let server: http.Server;
const dir = mkdtempSync(join(tmpdir(), 'gw-nacos-rule-'));

function answer(req: http.IncomingMessage, res: http.ServerResponse): void {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    const u = new URL(req.url!, 'http://x');
    const params = Object.fromEntries([...u.searchParams, ...new URLSearchParams(body)]);
    requests.push({ method: req.method!, path: u.pathname, params });
    if (u.pathname === '/nacos/v1/auth/login') return res.end(JSON.stringify({ accessToken: 'tok-123', tokenTtl: 18000 }));
    if (u.pathname !== '/nacos/v1/cs/configs') return ((res.statusCode = 404), res.end());
    if (params.accessToken !== 'tok-123') return ((res.statusCode = 403), res.end('no token'));
    const key = `${params.tenant ?? ''}|${params.group}|${params.dataId}`;
    if (req.method === 'GET') {
      if (!configs.has(key)) return ((res.statusCode = 404), res.end('config data not exist'));
      return res.end(configs.get(key));
    }
    if (req.method === 'POST') configs.set(key, params.content!);
    if (req.method === 'DELETE') configs.delete(key);
    res.end('true');
  });
}

beforeAll(async () => {
  server = http.createServer(answer);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const FORMAT = '{{service}}:{{blueVersion}}={{blueWeight}};{{greenVersion}}={{greenWeight}}';

describe('nacos-rule documents', () => {
  it("renders the line and edits only graywave's line", () => {
    const o = nacosRuleOptions.parse({ provider: 'n', dataId: 'gray-rules', format: FORMAT, service: 'order', blueVersion: '1.0' });
    expect(ruleLine(o, { name: 'order', version: '1.1', group: 'GREEN' }, 25)).toEqual({ line: 'order:1.0=75;1.1=25', prefix: 'order:' });
    expect(withLine('pay:2.0=100\norder:1.0=100;1.1=0', 'order:', 'order:1.0=75;1.1=25')).toBe('pay:2.0=100\norder:1.0=75;1.1=25');
    expect(withLine('pay:2.0=100\norder:1.0=75;1.1=25', 'order:', null)).toBe('pay:2.0=100');
    expect(withLine(null, '', '1.0=75;1.1=25')).toBe('1.0=75;1.1=25');
  });

  it("publishes 0% before wave 1, widens per wave, keeps others' lines, logs in, and rollback restores the exact document", async () => {
    const tenantKey = 'dev|DEFAULT_GROUP|gray-rules';
    const original = '# rules of other teams\npay:2.0=90;2.1=10';
    configs.set(tenantKey, original);
    const providers = { nacos: { type: 'nacos', options: { url, namespace: 'dev', services: ['order'], username: 'nacos', password: { env: 'NACOS_PW' } } } };
    const params = nacosRuleOptions.parse({ provider: 'nacos', dataId: 'gray-rules', format: FORMAT, service: 'order', blueVersion: '1.0', weights: [10, 50] });
    const deps = routingDeps(dir, {
      routing: [{ name: 'version-weights', type: 'nacos-rule', params, end: 'final' }],
      providers,
      waves: [['h1'], ['h2'], ['h3']],
      env: { NACOS_PW: 'pw' },
    });
    const runner = new RoutingRunner(deps);
    {
      await runner.at('publish', 0);
      expect(configs.get(tenantKey)).toBe(`${original}\norder:1.0=100;1.1=0`);
      await runner.at('widen', 1);
      expect(configs.get(tenantKey)).toBe(`${original}\norder:1.0=90;1.1=10`);
      await runner.at('widen', 2);
      await runner.at('widen', 3); // last value holds: no change, no record
      await runner.at('final', 3);
      expect(configs.get(tenantKey)).toBe(`${original}\norder:1.0=50;1.1=50`);
      const post = requests.find((r) => r.method === 'POST' && r.path === '/nacos/v1/cs/configs')!;
      expect(post.params).toMatchObject({ dataId: 'gray-rules', group: 'DEFAULT_GROUP', tenant: 'dev', type: 'text', accessToken: 'tok-123' });
      expect(requests.filter((r) => r.path === '/nacos/v1/auth/login')).toHaveLength(1);
      const changes = deps.journal.records.filter((r) => r.type === 'routing' && ['publish', 'widen', 'final'].includes((r as { phase: string }).phase));
      expect(changes.map((r) => (r as { phase: string }).phase)).toEqual(['publish', 'widen', 'widen']);

      // Another team edits its line meanwhile: undo still takes out only graywave's line.
      configs.set(tenantKey, configs.get(tenantKey)!.replace('pay:2.0=90;2.1=10', 'pay:2.0=80;2.1=20'));
      expect(await runner.undo()).toBe(true);
      expect(configs.get(tenantKey)).toBe('# rules of other teams\npay:2.0=80;2.1=20');

      // A document that did not exist is deleted again.
      configs.delete(tenantKey);
      const d2 = routingDeps(mkdtempSync(join(tmpdir(), 'gw-nacos-rule-')), {
        routing: deps.playbook.routing!,
        providers,
        waves: [['h1']],
        env: { NACOS_PW: 'pw' },
      });
      const r2 = new RoutingRunner(d2);
      await r2.at('publish', 0);
      expect(configs.get(tenantKey)).toBe('order:1.0=100;1.1=0');
      expect(await r2.undo()).toBe(true);
      expect(configs.has(tenantKey)).toBe(false);
      rmSync(d2.playbook.dir, { recursive: true, force: true });
    }
  });

  it("the issue's shape (no blueVersion): BLUE is read from graywave's line in the document; no line: fails before writing", async () => {
    const key = '|DEFAULT_GROUP|gray-rules-pinned';
    const providers = { nacos: { type: 'nacos', options: { url, services: ['order'], username: 'nacos', password: { env: 'NACOS_PW' } } } };
    // Exactly the keys of the issue: provider, dataId, format.
    const params = nacosRuleOptions.parse({ provider: 'nacos', dataId: 'gray-rules-pinned', format: FORMAT, weights: [10, 50] });
    const deps = () =>
      routingDeps(mkdtempSync(join(dir, 'p-')), {
        routing: [{ name: 'version-weights', type: 'nacos-rule', params, end: 'final' }],
        providers,
        waves: [['h1'], ['h2'], ['h3']],
        env: { NACOS_PW: 'pw' },
      });

    configs.delete(key);
    const none = new RoutingRunner(deps());
    await expect(none.at('publish', 0)).rejects.toThrow(/BLUE version \(being replaced\) is unknown: the document does not exist yet; set blueVersion/);
    expect(configs.has(key)).toBe(false);
    configs.set(key, 'pay:2.0=100');
    await expect(new RoutingRunner(deps()).at('publish', 0)).rejects.toThrow(/no line starting with "order:"/);
    expect(configs.get(key)).toBe('pay:2.0=100');

    // The previous release (1.0 replacing 0.9) left its final line: the fleet runs 1.0, so 1.0 is BLUE for 1.1.
    configs.set(key, 'pay:2.0=100\norder:0.9=0;1.0=100');
    await new RoutingRunner(deps()).at('publish', 0);
    expect(configs.get(key)).toBe('pay:2.0=100\norder:1.0=100;1.1=0');
    // Each later point in a fresh process (resume) reads this release's own line: BLUE stays 1.0, even at 50/50.
    await new RoutingRunner(deps()).at('widen', 1);
    expect(configs.get(key)).toBe('pay:2.0=100\norder:1.0=90;1.1=10');
    await new RoutingRunner(deps()).at('widen', 2);
    expect(configs.get(key)).toBe('pay:2.0=100\norder:1.0=50;1.1=50');
    await new RoutingRunner(deps()).at('final', 3);
    expect(configs.get(key)).toBe('pay:2.0=100\norder:1.0=50;1.1=50');
  });

  it.skipIf(!hasOpenssl())("talks HTTPS with the nacos provider's tls: settings (a private CA); without them the certificate is refused", async () => {
    const pki = makeTestPki();
    const https = await startHttps({ cert: pki.serverCert, key: pki.serverKey }, answer);
    try {
      writeFileSync(join(dir, 'nacos-ca.pem'), pki.serverCert);
      const key = '|DEFAULT_GROUP|tls-rules';
      configs.delete(key);
      const params = nacosRuleOptions.parse({ provider: 'nacos', dataId: 'tls-rules', format: FORMAT, service: 'order', blueVersion: '1.0' });
      const providers = (tls?: object) => ({
        nacos: { type: 'nacos', options: { url: https.url, services: ['order'], username: 'nacos', password: { env: 'NACOS_PW' }, ...(tls ? { tls } : {}) } },
      });
      const deps = (tls?: object) =>
        routingDeps(mkdtempSync(join(dir, 'r-')), {
          routing: [{ name: 'v', type: 'nacos-rule', params, end: 'final' }],
          providers: providers(tls),
          waves: [['h1']],
          env: { NACOS_PW: 'pw' },
        });
      const refused = new RoutingRunner(deps());
      await expect(refused.at('publish', 0)).rejects.toThrow(/self-signed certificate[\s\S]*tls: \{ ca:/);
      await refused.close();
      expect(configs.has(key)).toBe(false);
      const trusted = new RoutingRunner(deps({ ca: join(dir, 'nacos-ca.pem') }));
      await trusted.at('publish', 0);
      expect(configs.get(key)).toBe('order:1.0=100;1.1=0');
      await trusted.close();
    } finally {
      await https.stop();
      pki.cleanup();
    }
  });
});
