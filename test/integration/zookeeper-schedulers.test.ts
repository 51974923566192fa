import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError } from '../../src/errors.js';
import { genericZookeeper } from '../../src/providers/generic/zookeeper.js';
import { elasticjobZookeeper } from '../../src/providers/scheduler/elasticjob-zookeeper.js';
import { ltsZookeeper } from '../../src/providers/scheduler/lts-zookeeper.js';
import type { Provider, ProviderType } from '../../src/providers/types.js';
import { Zk } from '../../src/providers/zk.js';
import { renderShell } from '../../src/util/template.js';
import { makeContext, makeEnv, makeHost } from '../helpers/contexts.js';
import { mk } from './helpers/dubbo-seed.js';
import { ZooKeeperServer, dumpTree, hasZookeeper, removeTree } from './helpers/zookeeper.js';

const has = hasZookeeper();

describe.skipIf(!has)('ZooKeeper scheduler providers against a real ZooKeeper', () => {
  let server: ZooKeeperServer;
  let zk: Zk;
  let running = 2;
  let httpServer: http.Server;
  let httpUrl: string;
  const providers: Provider[] = [];

  const make = (type: ProviderType, o: Record<string, unknown>) => {
    const p = type.create(type.options.parse({ connect: server.connect, connectTimeout: '3s', ...o }), makeEnv()) as Provider;
    providers.push(p);
    return p;
  };
  const ctx = (address = '127.0.0.21', previous?: unknown) => {
    const host = makeHost('job-1', address, { vars: { machine: 'm-07' } });
    return makeContext({ host, previous, extra: { renderShell: (t: string) => renderShell(t, { release: 'r1', version: '1', group: 'GREEN', host }) } });
  };

  beforeAll(async () => {
    server = await ZooKeeperServer.start();
    zk = new Zk({ connect: server.connect, sessionTimeoutMs: 10_000, connectTimeoutMs: 3000, label: 'test' });
    // A TaskTracker-side endpoint answering its running jobs as JSON.
    httpServer = http.createServer((_req, res) => res.end(JSON.stringify({ data: { running } })));
    await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
    httpUrl = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}/jobs?host={{host.address}}`;
    // LTS registry as TaskTrackers register it (ephemeral in reality; persistent here).
    await mk(
      zk,
      '/LTS/order_cluster/NODES/TASK_TRACKER/TASK_TRACKER:\\\\127.0.0.21?group=order_tt&clusterName=order_cluster&threads=8&identity=TT_1&createTime=1700000000000&isAvailable=true&hostName=job-1',
    );
    // ElasticJob namespace: two jobs on the host, one on another host only.
    for (const job of ['settleJob', 'reportJob']) {
      await mk(zk, `/elastic/${job}/servers/127.0.0.21`, 'ENABLED');
      await mk(zk, `/elastic/${job}/servers/127.0.0.22`, 'ENABLED');
      await mk(zk, `/elastic/${job}/sharding/0/instance`, '127.0.0.21@-@4242');
      await mk(zk, `/elastic/${job}/sharding/1/instance`, '127.0.0.22@-@777');
    }
    await mk(zk, '/elastic/cleanupJob/servers/127.0.0.22', 'ENABLED');
  });
  afterAll(async () => {
    await new Promise((r) => httpServer?.close(r));
    await zk?.close();
    await server?.stop();
  });
  afterEach(async () => {
    for (const p of providers.splice(0)) await p.close?.();
  });

  it('lts: drain creates the offline marker under the cluster root, isDrained waits for 0 running jobs, restore removes it and its folder', async () => {
    const before = await dumpTree(zk);
    const p = make(ltsZookeeper, { cluster: 'order_cluster', runningCheck: { http: httpUrl, field: 'data.running' } });
    expect(await p.isDrained(ctx())).toMatchObject({ done: false, observed: expect.stringContaining('missing') });
    running = 2;
    const saved = await p.drain(ctx());
    expect(saved).toEqual({ marker: '/LTS/order_cluster/OFFLINE/127.0.0.21', created: true });
    expect(JSON.parse((await zk.get('/LTS/order_cluster/OFFLINE/127.0.0.21'))!.data.toString())).toMatchObject({ by: 'graywave', host: 'job-1' });
    expect(await p.isDrained(ctx())).toEqual({ done: false, observed: '2 jobs still running' });
    running = 0;
    expect((await p.isDrained(ctx())).done).toBe(true);
    // Repeated drain (resume) without saved data: the marker's data says it is ours.
    expect(await p.drain(ctx())).toEqual(saved);
    expect(await p.isRestored!(ctx(), saved)).toEqual({ done: false, observed: 'offline marker /LTS/order_cluster/OFFLINE/127.0.0.21 still there' });
    await p.restore(ctx(), saved);
    expect(await dumpTree(zk)).toEqual(before);
    expect(await p.isRestored!(ctx(), saved)).toEqual({
      done: true,
      observed: 'marker /LTS/order_cluster/OFFLINE/127.0.0.21 gone, 1 TaskTracker node(s) online',
    });
    expect(await p.isRegistered!(ctx())).toMatchObject({ done: true });
    expect(await p.isRegistered!(ctx('127.0.0.2'))).toEqual({ done: false, observed: 'no TaskTracker node of 127.0.0.2 in cluster order_cluster' });
  });

  it('lts: a marker someone else created is left in place; a failing running-jobs command is not drained', async () => {
    await mk(zk, '/LTS/order_cluster/OFFLINE/127.0.0.23', 'ops');
    const p = make(ltsZookeeper, {
      cluster: 'order_cluster',
      marker: '/LTS/order_cluster/OFFLINE/{{host.address}}',
      runningCheck: { command: 'echo oops >&2; exit 3' },
    });
    const saved = await p.drain(ctx('127.0.0.23'));
    expect(saved).toMatchObject({ created: false });
    expect(await p.isDrained(ctx('127.0.0.23'))).toMatchObject({ done: false, observed: expect.stringMatching(/exit 3.*oops/) });
    await p.restore(ctx('127.0.0.23'), saved);
    expect((await zk.get('/LTS/order_cluster/OFFLINE/127.0.0.23'))?.data.toString()).toBe('ops');
    // The operator's marker stays, but no TaskTracker of .23 is online: not serving.
    expect(await p.isRestored!(ctx('127.0.0.23'), saved)).toEqual({
      done: false,
      observed: 'no TaskTracker node of 127.0.0.23 online under /LTS/order_cluster/NODES/TASK_TRACKER',
    });
    await removeTree(zk, '/LTS/order_cluster/OFFLINE');
  });

  it('lts: the running-jobs command is rendered with shell-quoted host values', async () => {
    const p = make(ltsZookeeper, {
      cluster: 'order_cluster',
      marker: '/LTS/order_cluster/OFFLINE/{{host.vars.machine}}',
      runningCheck: { command: 'test {{host.vars.machine}} = m-07 && echo 0' },
    });
    const saved = await p.drain(ctx());
    expect(saved).toMatchObject({ marker: '/LTS/order_cluster/OFFLINE/m-07' });
    expect(await p.isDrained(ctx())).toMatchObject({ done: true });
    await p.restore(ctx(), saved);
    expect(await zk.exists('/LTS/order_cluster/OFFLINE')).toBe(false);
  });

  it('elasticjob: DISABLED for every job of the host, running shards block isDrained, restore writes back the previous content', async () => {
    const before = await dumpTree(zk);
    const p = make(elasticjobZookeeper, { namespace: 'elastic' });
    await mk(zk, '/elastic/settleJob/sharding/0/running');
    const saved = await p.drain(ctx());
    expect(saved).toEqual({ server: '127.0.0.21', previous: { reportJob: 'ENABLED', settleJob: 'ENABLED' } });
    expect((await zk.get('/elastic/settleJob/servers/127.0.0.21'))!.data.toString()).toBe('DISABLED');
    expect((await zk.get('/elastic/settleJob/servers/127.0.0.22'))!.data.toString()).toBe('ENABLED');
    expect(await p.isDrained(ctx())).toEqual({ done: false, observed: 'shards still running on 127.0.0.21: settleJob#0' });
    await zk.remove('/elastic/settleJob/sharding/0/running');
    expect((await p.isDrained(ctx())).done).toBe(true);
    // A repeated drain keeps the recorded content.
    expect(await p.drain(ctx('127.0.0.21', saved))).toEqual(saved);
    expect(await p.isRestored!(ctx(), saved)).toMatchObject({ done: false, observed: expect.stringContaining('reportJob: servers/127.0.0.21 still DISABLED') });
    await p.restore(ctx(), saved);
    expect(await dumpTree(zk)).toEqual(before);
    // Enabled again, but the app has no job instance online (it did not come back after the deploy).
    expect(await p.isRestored!(ctx(), saved)).toEqual({
      done: false,
      observed: 'reportJob: no instance of 127.0.0.21 online; settleJob: no instance of 127.0.0.21 online',
    });
    for (const job of ['settleJob', 'reportJob']) await mk(zk, `/elastic/${job}/instances/127.0.0.21@-@4242`, 'jobInstanceId: 127.0.0.21@-@4242');
    expect(await p.isRestored!(ctx(), saved)).toEqual({ done: true, observed: '127.0.0.21 enabled and online in reportJob, settleJob' });
    for (const job of ['settleJob', 'reportJob']) await removeTree(zk, `/elastic/${job}/instances`);
    expect(await p.isRegistered!(ctx())).toMatchObject({ done: true });
    expect(await p.isRegistered!(ctx('127.0.0.40'))).toMatchObject({ done: false });
  });

  it('elasticjob: the app re-enabling itself shows as not drained, and restore leaves the app-written value', async () => {
    const p = make(elasticjobZookeeper, { namespace: 'elastic', jobs: ['reportJob'] });
    const saved = await p.drain(ctx());
    expect(saved).toEqual({ server: '127.0.0.21', previous: { reportJob: 'ENABLED' } });
    expect((await zk.get('/elastic/settleJob/servers/127.0.0.21'))!.data.toString()).toBe('ENABLED');
    await zk.set('/elastic/reportJob/servers/127.0.0.21', 'ENABLED', -1);
    expect(await p.isDrained(ctx())).toMatchObject({ done: false, observed: expect.stringContaining('re-enabled') });
    await p.restore(ctx(), saved);
    expect((await zk.get('/elastic/reportJob/servers/127.0.0.21'))!.data.toString()).toBe('ENABLED');
  });

  it('elasticjob: a host that runs no job is a clear, non-retryable error', async () => {
    const p = make(elasticjobZookeeper, { namespace: 'elastic' });
    const err = await p.drain(ctx('127.0.0.40')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).retryable).toBe(false);
    expect((err as Error).message).toMatch(/no job has server 127\.0\.0\.40 under \/elastic/);
    expect((await p.isDrained(ctx('127.0.0.40'))).done).toBe(false);
  });

  it('generic create: templated node created with parents, deleted with them on restore', async () => {
    const before = await dumpTree(zk);
    const p = make(genericZookeeper, { path: '/scheduler/offline/{{host.name}}', value: '{{host.address}}' });
    expect((await p.isDrained(ctx())).done).toBe(false);
    const saved = await p.drain(ctx());
    expect((await zk.get('/scheduler/offline/job-1'))!.data.toString()).toBe('127.0.0.21');
    expect((await p.isDrained(ctx())).done).toBe(true);
    expect(await p.drain(ctx('127.0.0.21', saved))).toEqual(saved);
    expect(await p.isRestored!(ctx(), saved)).toEqual({ done: false, observed: '/scheduler/offline/job-1 still exists' });
    await p.restore(ctx(), saved);
    expect(await dumpTree(zk)).toEqual(before);
    expect(await p.isRestored!(ctx(), saved)).toEqual({ done: true, observed: '/scheduler/offline/job-1 gone' });
  });

  it('generic set: writes the value, restores the previous bytes exactly', async () => {
    await mk(zk, '/scheduler/hosts/job-1', 'online\n');
    const before = await dumpTree(zk);
    const p = make(genericZookeeper, { path: '/scheduler/hosts/{{host.name}}', value: 'offline', mode: 'set' });
    const saved = await p.drain(ctx());
    expect((await zk.get('/scheduler/hosts/job-1'))!.data.toString()).toBe('offline');
    expect(await p.isDrained(ctx())).toMatchObject({ done: true });
    expect(await p.drain(ctx('127.0.0.21', saved))).toEqual(saved);
    expect(await p.isRestored!(ctx(), saved)).toMatchObject({ done: false });
    await p.restore(ctx(), saved);
    expect(await dumpTree(zk)).toEqual(before);
    expect(await p.isRestored!(ctx(), saved)).toEqual({ done: true, observed: '/scheduler/hosts/job-1 = "online\\n"' });
    await removeTree(zk, '/scheduler');
  });
});
