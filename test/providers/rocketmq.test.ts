import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createRocketmqProvider,
  isHostClient,
  parseConsumerConnection,
  rocketmqOptions,
  rocketmqProvider,
  type RocketmqOptions,
} from '../../src/providers/mq/rocketmq.js';
import type { Host } from '../../src/playbook/types.js';
import { LocalTransport } from '../../src/transport/local.js';
import type { ExecOptions, ExecResult, Transport } from '../../src/transport/types.js';
import { makeContext, makeEnv, makeHost } from '../helpers/contexts.js';
import { tempDir } from '../integration/helpers/process.js';

/**
 * RocketMQ does not install here. The broker side is played by a fake `mqadmin` script (prints exactly the
 * documented `consumerConnection` output, or the 206 error) and by a small HTTP server that answers like
 * rocketmq-dashboard's consumerConnection.query; the same server plays the host app's suspend/resume endpoints.
 */

/** The `%-36s %-22s %-10s %s` layout of mqadmin consumerConnection. */
function row(id: string, addr: string, lang: string, ver: string): string {
  return `${id.padEnd(36)} ${addr.padEnd(22)} ${lang.padEnd(10)} ${ver}`;
}
function table(clients: [string, string][]): string {
  return [
    row('#ClientId', '#ClientAddr', '#Language', '#Version'),
    ...clients.map(([id, addr]) => row(id, addr, 'JAVA', 'V5_1_4')),
    '',
    'Below is subscription:',
    `${'#Topic'.padEnd(20)} #SubExpression`,
    `${'OrderTopic'.padEnd(20)} *`,
    '',
    'ConsumeType: CONSUME_PASSIVELY',
    'MessageModel: CLUSTERING',
    'ConsumeFromWhere: CONSUME_FROM_LAST_OFFSET',
    '',
  ].join('\n');
}
const ERR_206 =
  'org.apache.rocketmq.tools.command.SubCommandException: ConsumerConnectionSubCommand command failed\n' +
  'Caused by: org.apache.rocketmq.client.exception.MQBrokerException: CODE: 206  DESC: the consumer group[GROUP] not online\n';

interface Req {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: http.IncomingHttpHeaders;
  body: string;
}

describe('rocketmq provider', () => {
  let dir: string;
  let server: http.Server;
  let base: string;
  const requests: Req[] = [];
  /** What the fake dashboard answers, by `group@broker`. */
  let dashboard: Record<string, { status?: number; json?: unknown }> = {};
  let appStatus = 200;

  beforeAll(async () => {
    dir = tempDir('rocketmq');
    mkdirSync(join(dir, 'resp'));
    // Fake mqadmin: logs its argv (one arg per line, then ---), answers from resp/<group>.{out,err,code}.
    writeFileSync(
      join(dir, 'mqadmin'),
      [
        '#!/bin/bash',
        `D=${JSON.stringify(dir)}`,
        'printf "%s\\n" "$@" >> "$D/args"; echo --- >> "$D/args"',
        'g=""; while [ $# -gt 0 ]; do [ "$1" = -g ] && g="$2"; shift; done',
        '[ -f "$D/resp/$g.out" ] && cat "$D/resp/$g.out"',
        '[ -f "$D/resp/$g.err" ] && cat "$D/resp/$g.err" >&2',
        'exit $(cat "$D/resp/$g.code" 2>/dev/null || echo 0)',
        '',
      ].join('\n'),
    );
    chmodSync(join(dir, 'mqadmin'), 0o755);

    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const url = new URL(req.url!, 'http://x');
        const r: Req = { method: req.method!, path: url.pathname, query: Object.fromEntries(url.searchParams), headers: req.headers, body };
        requests.push(r);
        if (r.path.startsWith('/admin/mq/')) {
          res.writeHead(appStatus, { 'content-type': 'text/plain' });
          return res.end(appStatus === 200 ? 'ok' : 'boom');
        }
        if (r.method === 'GET' && r.path === '/consumer/consumerConnection.query') {
          const a = dashboard[`${r.query.consumerGroup}@${r.query.address}`] ?? { json: { status: -1, data: null, errMsg: 'unexpected request' } };
          res.writeHead(a.status ?? 200, { 'content-type': 'application/json' });
          return res.end(JSON.stringify(a.json ?? {}));
        }
        res.writeHead(404);
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    requests.length = 0;
    dashboard = {};
    appStatus = 200;
    rmSync(join(dir, 'args'), { force: true });
    for (const f of ['order_consumer', 'audit_consumer']) for (const x of ['out', 'err', 'code']) rmSync(join(dir, 'resp', `${f}.${x}`), { force: true });
  });

  function respond(group: string, r: { out?: string; err?: string; code?: number }) {
    if (r.out !== undefined) writeFileSync(join(dir, 'resp', `${group}.out`), r.out);
    if (r.err !== undefined) writeFileSync(join(dir, 'resp', `${group}.err`), r.err.replace('GROUP', group));
    if (r.code !== undefined) writeFileSync(join(dir, 'resp', `${group}.code`), String(r.code));
  }
  /** Each mqadmin invocation's argv. */
  function mqadminCalls(): string[][] {
    let text = '';
    try {
      text = readFileSync(join(dir, 'args'), 'utf8');
    } catch {
      return [];
    }
    return text
      .split('---\n')
      .filter(Boolean)
      .map((c) => c.trimEnd().split('\n'));
  }

  function provider(check: Record<string, unknown>, extra: Record<string, unknown> = {}) {
    const opts: RocketmqOptions = rocketmqOptions.parse({
      suspend: { http: `${base}/admin/mq/suspend?host={{host.name}}`, method: 'POST', headers: { 'x-admin-token': { env: 'APP_TOKEN' } } },
      resume: {
        http: `${base}/admin/mq/resume?host={{host.name}}`,
        method: 'POST',
        body: { host: '{{host.address}}' },
        headers: { 'x-admin-token': { env: 'APP_TOKEN' } },
      },
      check,
      ...extra,
    });
    return createRocketmqProvider(opts, makeEnv({ dir, env: { APP_TOKEN: 's3cret-token' } }));
  }
  const host = makeHost('app-05', '10.0.0.5');

  it('options are strict and take one of the two checks', () => {
    expect(rocketmqProvider.type).toBe('rocketmq');
    const call = { http: 'http://x/s', method: 'POST' };
    expect(() => rocketmqOptions.parse({ suspend: call, resume: call, check: { mqadmin: '/m', namesrv: 'ns:9876', groups: ['g'] } })).not.toThrow();
    expect(() =>
      rocketmqOptions.parse({ suspend: call, resume: call, check: { dashboard: 'http://d:8082', groups: ['g'], brokers: ['b:10911'] } }),
    ).not.toThrow();
    expect(() => rocketmqOptions.parse({ suspend: call, resume: call, check: { mqadmin: '/m', namesrv: 'ns', groups: [] } })).toThrow(/groups/);
    // The shape: a dashboard and groups, no brokers.
    expect(() => rocketmqOptions.parse({ suspend: call, resume: call, check: { dashboard: 'http://d:8082', groups: ['g'] } })).not.toThrow();
    expect(() => rocketmqOptions.parse({ suspend: call, resume: call, check: { dashboard: 'http://d:8082', groups: ['g'], brokers: [] } })).toThrow(/brokers/);
    expect(() => rocketmqOptions.parse({ suspend: call, resume: call, check: { groups: ['g'] } })).toThrow(/either mqadmin .* or dashboard/);
    expect(() => rocketmqOptions.parse({ suspend: call, check: { mqadmin: '/m', namesrv: 'ns', groups: ['g'] } })).toThrow(/resume/);
    expect(() => rocketmqOptions.parse({ suspend: call, resume: call, check: { mqadmin: '/m', namesrv: 'ns', groups: ['g'], nope: 1 } })).toThrow(/nope/);
  });

  it('parses the consumerConnection table by its header, including an overflowing ClientId', () => {
    const longId = '10.0.0.7@4242#123456789012345678901234567';
    const text = table([
      ['10.0.0.5@4242#123456789', '10.0.0.5:51234'],
      [longId, '10.0.0.7:40000'],
    ]);
    expect(parseConsumerConnection(text)).toEqual([
      { clientId: '10.0.0.5@4242#123456789', clientAddr: '10.0.0.5:51234' },
      { clientId: longId, clientAddr: '10.0.0.7:40000' },
    ]);
    expect(parseConsumerConnection('connect to 10.0.0.9:9876 failed')).toBeUndefined();
    expect(isHostClient({ clientId: '10.0.0.5@1#2', clientAddr: '' }, '10.0.0.5')).toBe(true);
    expect(isHostClient({ clientId: 'x', clientAddr: '10.0.0.50:1' }, '10.0.0.5')).toBe(false);
  });

  it('mqadmin: suspend through the app, then drained once the host is gone from every group (206 = no client)', async () => {
    const p = provider({ mqadmin: join(dir, 'mqadmin'), namesrv: 'ns1:9876', groups: ['order_consumer', 'audit_consumer'] });
    const ctx = makeContext({ host });

    const saved = await p.drain(ctx);
    expect(saved).toEqual({ suspended: true, clientAddress: '10.0.0.5' });
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({ method: 'POST', path: '/admin/mq/suspend', query: { host: 'app-05' } });
    expect(requests[0]!.headers['x-admin-token']).toBe('s3cret-token');
    expect(JSON.stringify(saved) + ctx.lines.join('\n')).not.toContain('s3cret-token');

    // Still listed in order_consumer (other hosts too); audit_consumer has no client at all.
    respond('order_consumer', {
      out: table([
        ['10.0.0.5@4242#1', '10.0.0.5:51234'],
        ['10.0.0.6@77#2', '10.0.0.6:40000'],
      ]),
    });
    respond('audit_consumer', { err: ERR_206, code: 1 });
    expect(await p.isDrained(ctx)).toEqual({ done: false, observed: '10.0.0.5 still connected to order_consumer (10.0.0.5@4242#1)' });
    expect(mqadminCalls()).toEqual([
      ['consumerConnection', '-n', 'ns1:9876', '-g', 'order_consumer'],
      ['consumerConnection', '-n', 'ns1:9876', '-g', 'audit_consumer'],
    ]);

    respond('order_consumer', { out: table([['10.0.0.6@77#2', '10.0.0.6:40000']]) });
    expect(await p.isDrained(ctx)).toMatchObject({ done: true });

    expect(await p.isRestored!(ctx, saved)).toEqual({ done: false, observed: '10.0.0.5 not connected to order_consumer, audit_consumer' });
    await p.restore(ctx, saved);
    expect(requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /admin/mq/suspend', 'POST /admin/mq/resume']);
    // Back in one group only: not serving yet; in both: restored.
    respond('order_consumer', {
      out: table([
        ['10.0.0.5@4243#1', '10.0.0.5:51300'],
        ['10.0.0.6@77#2', '10.0.0.6:40000'],
      ]),
    });
    expect(await p.isRestored!(ctx, saved)).toEqual({
      done: false,
      observed: '10.0.0.5 not connected to audit_consumer (connected to order_consumer (10.0.0.5@4243#1))',
    });
    respond('audit_consumer', { out: table([['10.0.0.5@4243#1', '10.0.0.5:51301']]), err: '', code: 0 });
    expect(await p.isRestored!(ctx, saved)).toEqual({
      done: true,
      observed: '10.0.0.5 connected to order_consumer (10.0.0.5@4243#1); audit_consumer (10.0.0.5@4243#1)',
    });
    expect(await p.isRegistered!(ctx)).toMatchObject({ done: true });
    respond('audit_consumer', { err: 'org.apache.rocketmq.tools.command.SubCommandException: timeout', code: 1 });
    expect(await p.isRestored!(ctx, saved)).toMatchObject({
      done: false,
      observed: expect.stringMatching(/^state unknown: mqadmin consumerConnection -g audit_consumer/),
    });
    expect(JSON.parse(requests[1]!.body)).toEqual({ host: '10.0.0.5' });
    expect(requests[1]!.headers['content-type']).toBe('application/json');
  });

  it('mqadmin: an error other than 206 is unknown, never drained (even with "206" inside an address)', async () => {
    const p = provider({ mqadmin: join(dir, 'mqadmin'), namesrv: 'ns1:9876', groups: ['order_consumer'], broker: '10.0.0.9:10911' });
    respond('order_consumer', { err: 'org.apache.rocketmq.remoting.exception.RemotingConnectException: connect to 10.0.0.206:10911 failed\n', code: 1 });
    const check = await p.isDrained(makeContext({ host }));
    expect(check.done).toBe(false);
    expect(check.observed).toMatch(/exit 1: .*connect to 10\.0\.0\.206:10911 failed/);
    expect(mqadminCalls()[0]).toEqual(['consumerConnection', '-n', 'ns1:9876', '-g', 'order_consumer', '-b', '10.0.0.9:10911']);

    // A missing mqadmin is unknown too.
    const gone = provider({ mqadmin: join(dir, 'no-such-mqadmin'), namesrv: 'ns1:9876', groups: ['order_consumer'] });
    expect((await gone.isDrained(makeContext({ host }))).done).toBe(false);
  });

  it('mqadmin at: host runs through the host transport, every argument shell-quoted', async () => {
    // The "host" transport runs locally but records which host it was asked for.
    const local = new LocalTransport(dir);
    const hosts: string[] = [];
    const transport: Transport = {
      exec(h: Host, command: string, o?: ExecOptions): Promise<ExecResult> {
        hosts.push(h.name);
        return local.exec(h, command, o);
      },
      upload: async () => {},
      release: async () => {},
      close: async () => {},
    };
    mkdirSync(join(dir, 'rocket mq'), { recursive: true });
    copyFileSync(join(dir, 'mqadmin'), join(dir, 'rocket mq', 'mqadmin'));
    respond('order_consumer', { out: table([]) });
    const p = provider({ mqadmin: join(dir, 'rocket mq', 'mqadmin'), namesrv: 'ns1:9876;touch pwned', groups: ['order_consumer'], at: 'host' });
    expect(await p.isDrained(makeContext({ host, transport }))).toMatchObject({ done: true });
    expect(hosts).toEqual(['app-05']);
    expect(mqadminCalls()).toEqual([['consumerConnection', '-n', 'ns1:9876;touch pwned', '-g', 'order_consumer']]);
    expect(existsSync(join(dir, 'pwned'))).toBe(false);
  });

  it('dashboard: asks consumerConnection.query per group and broker; 206 counts as no client, other errors as unknown', async () => {
    const p = provider({ dashboard: base, groups: ['order_consumer'], brokers: ['10.0.0.9:10911', '10.0.0.10:10911'] });
    const ctx = makeContext({ host });
    const conn = (id: string, addr: string) => ({ clientId: id, clientAddr: addr, language: 'JAVA', version: 453, versionDesc: 'V5_1_4' });
    dashboard = {
      'order_consumer@10.0.0.9:10911': {
        json: { status: 0, data: { connectionSet: [conn('10.0.0.6@1#2', '10.0.0.6:40000')], consumeType: 'CONSUME_PASSIVELY' }, errMsg: null },
      },
      'order_consumer@10.0.0.10:10911': { json: { status: 0, data: { connectionSet: [conn('10.0.0.5@4242#9', '10.0.0.5:51234')] }, errMsg: null } },
    };
    expect(await p.isDrained(ctx)).toEqual({ done: false, observed: '10.0.0.5 still connected to order_consumer (10.0.0.5@4242#9)' });
    expect(requests.map((r) => ({ method: r.method, path: r.path, query: r.query }))).toEqual([
      { method: 'GET', path: '/consumer/consumerConnection.query', query: { consumerGroup: 'order_consumer', address: '10.0.0.9:10911' } },
      { method: 'GET', path: '/consumer/consumerConnection.query', query: { consumerGroup: 'order_consumer', address: '10.0.0.10:10911' } },
    ]);

    dashboard['order_consumer@10.0.0.10:10911'] = { json: { status: -1, errMsg: 'CODE: 206  DESC: the consumer group[order_consumer] not online' } };
    expect(await p.isDrained(ctx)).toMatchObject({ done: true });

    dashboard['order_consumer@10.0.0.10:10911'] = { json: { status: -1, errMsg: 'RemotingTimeoutException: wait response timeout' } };
    expect(await p.isDrained(ctx)).toMatchObject({ done: false, observed: expect.stringMatching(/status -1: RemotingTimeoutException/) });
    dashboard['order_consumer@10.0.0.10:10911'] = { status: 502, json: {} };
    expect(await p.isDrained(ctx)).toMatchObject({ done: false, observed: expect.stringMatching(/HTTP 502/) });
  });

  it('dashboard without brokers: asks consumerConnection.query by group alone; an error answer hints at brokers', async () => {
    const p = provider({ dashboard: base, groups: ['order_consumer', 'audit_consumer'] });
    const ctx = makeContext({ host });
    const conn = (id: string, addr: string) => ({ clientId: id, clientAddr: addr, language: 'JAVA', version: 453, versionDesc: 'V5_1_4' });
    dashboard = {
      'order_consumer@undefined': { json: { status: 0, data: { connectionSet: [conn('10.0.0.5@4242#9', '10.0.0.5:51234')] }, errMsg: null } },
      'audit_consumer@undefined': { json: { status: 0, data: { connectionSet: [] }, errMsg: null } },
    };
    expect(await p.isDrained(ctx)).toEqual({ done: false, observed: '10.0.0.5 still connected to order_consumer (10.0.0.5@4242#9)' });
    expect(requests.map((r) => ({ method: r.method, path: r.path, query: r.query }))).toEqual([
      { method: 'GET', path: '/consumer/consumerConnection.query', query: { consumerGroup: 'order_consumer' } },
      { method: 'GET', path: '/consumer/consumerConnection.query', query: { consumerGroup: 'audit_consumer' } },
    ]);
    dashboard['order_consumer@undefined'] = { json: { status: -1, errMsg: 'CODE: 206  DESC: the consumer group[order_consumer] not online' } };
    expect(await p.isDrained(ctx)).toEqual({ done: true, observed: '10.0.0.5 not connected to order_consumer, audit_consumer' });
    dashboard['order_consumer@undefined'] = { json: { status: -1, errMsg: 'java.lang.NullPointerException' } };
    expect(await p.isDrained(ctx)).toMatchObject({ done: false, observed: expect.stringMatching(/NullPointerException.*set check\.brokers/) });
  });

  it('a failing suspend endpoint fails the drain with the URL, no query string, no token', async () => {
    appStatus = 503;
    const p = provider({ mqadmin: join(dir, 'mqadmin'), namesrv: 'ns1:9876', groups: ['order_consumer'] });
    const err = await p.drain(makeContext({ host })).then(
      () => undefined,
      (e: Error & { retryable?: boolean }) => e,
    );
    expect(err?.message).toMatch(new RegExp(`POST ${base}/admin/mq/suspend answered HTTP 503`));
    expect(err?.message).not.toContain('s3cret-token');
    expect(err?.retryable).toBe(true);
  });
});
