import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { Zk } from '../../src/providers/zk.js';
import { dubboConditionOptions, dubboTagOptions } from '../../src/routing/dubbo.js';
import { RoutingRunner } from '../../src/routing/run.js';
import { routingDeps } from '../routing/deps.js';
import { dumpTree, hasZookeeper, removeTree, ZooKeeperServer } from './helpers/zookeeper.js';
import { FOREIGN_TAG_ROUTER, mk } from './helpers/dubbo-seed.js';
import { removeDir, tempDir } from './helpers/process.js';

/** dubbo-tag and dubbo-condition against a real ZooKeeper: others' rules survive, rollback leaves the tree byte for byte. */

const run = hasZookeeper();
let zkServer: ZooKeeperServer;
let zk: Zk;
const TAG = '/dubbo/config/dubbo/order-service.tag-router';
const COND = '/dubbo/config/dubbo/order-service.condition-router';

beforeAll(async () => {
  if (!run) return;
  zkServer = await ZooKeeperServer.start();
  zk = new Zk({ connect: zkServer.connect, sessionTimeoutMs: 5000, connectTimeoutMs: 5000, label: 'test' });
}, 60_000);

afterAll(async () => {
  if (!run) return;
  await zk?.close();
  await zkServer?.stop();
});

const providers = () => ({ dubbo: { type: 'dubbo-zookeeper', options: { connect: zkServer.connect, application: 'order-service' } } });

describe.skipIf(!run)('routing rules on ZooKeeper', () => {
  it('dubbo-tag: publishes the GREEN tag beside the foreign one, reads it back, and rollback restores the exact bytes', async () => {
    await removeTree(zk, '/dubbo');
    await mk(zk, '/dubbo');
    await mk(zk, '/dubbo/config');
    await mk(zk, '/dubbo/config/dubbo');
    const disabled = FOREIGN_TAG_ROUTER.replace('enabled: true', 'enabled: false');
    await mk(zk, TAG, disabled);
    const before = await dumpTree(zk, '/dubbo');
    const dir = tempDir('routing-zk');
    const deps = routingDeps(dir, {
      routing: [{ name: 'dubbo-gray', type: 'dubbo-tag', params: dubboTagOptions.parse({ provider: 'dubbo' }), end: 'final' }],
      providers: providers(),
      waves: [['h1'], ['h2']],
    });
    const runner = new RoutingRunner(deps);
    await runner.at('publish', 0);
    const rule = YAML.parse((await zk.get(TAG))!.data.toString('utf8'));
    expect(rule.enabled).toBe(true);
    expect(rule.tags).toEqual([
      { name: 'blue', addresses: ['127.0.0.99:20880'] },
      { name: 'GREEN', addresses: [] },
    ]);
    await runner.at('widen', 1); // nothing to widen: relabel adds the hosts
    await runner.at('publish', 0); // confirmed already: not published again
    expect(deps.journal.records.filter((r) => r.type === 'routing' && r.phase === 'publish')).toHaveLength(1);
    expect(await runner.undo()).toBe(true);
    expect(await dumpTree(zk, '/dubbo')).toEqual(before);

    // A relabel adds a host in between: undo takes out only its own change and keeps the address.
    const deps2 = routingDeps(tempDir('routing-zk'), { routing: deps.playbook.routing!, providers: providers(), waves: [['h1']] });
    const runner2 = new RoutingRunner(deps2);
    await runner2.at('publish', 0);
    const mid = (await zk.get(TAG))!;
    await zk.set(TAG, mid.data.toString('utf8').replace('addresses: []', 'addresses: [ "127.0.0.10:20880" ]'), mid.version);
    expect(await runner2.undo()).toBe(true);
    const after = YAML.parse((await zk.get(TAG))!.data.toString('utf8'));
    expect(after.enabled).toBe(false);
    expect(after.tags[1]).toEqual({ name: 'GREEN', addresses: ['127.0.0.10:20880'] });
    await runner.close();
    await runner2.close();
    removeDir(dir);
    removeDir(deps2.playbook.dir);
  }, 30_000);

  it("dubbo-condition: chosen consumers follow the GREEN hosts wave by wave; others' conditions stay; rollback deletes what it created", async () => {
    await removeTree(zk, '/dubbo');
    const dir = tempDir('routing-zk');
    const params = dubboConditionOptions.parse({ provider: 'dubbo', consumers: { hosts: ['10.0.0.9'], applications: ['web-shop'] } });
    const deps = routingDeps(dir, {
      routing: [{ name: 'vip', type: 'dubbo-condition', params, end: 'final' }],
      providers: providers(),
      waves: [['h1'], ['h2', 'h3']],
    });
    const runner = new RoutingRunner(deps);
    await runner.at('publish', 0);
    expect(await zk.get(COND)).toBeUndefined(); // no GREEN host yet: nothing to route
    await runner.at('widen', 1);
    let rule = YAML.parse((await zk.get(COND))!.data.toString('utf8'));
    expect(rule.conditions).toEqual(['host = 10.0.0.9 => host = 127.0.0.10', 'application = web-shop => host = 127.0.0.10']);
    // Someone adds their own condition in between.
    const n = (await zk.get(COND))!;
    const doc = YAML.parseDocument(n.data.toString('utf8'));
    (doc.get('conditions') as YAML.YAMLSeq).add('host = 10.0.0.7 => host = 127.0.0.99');
    await zk.set(COND, n.data.toString('utf8').split('\n')[0] + '\n' + doc.toString(), n.version);
    await runner.at('widen', 2);
    rule = YAML.parse((await zk.get(COND))!.data.toString('utf8'));
    expect(rule.conditions).toEqual([
      'host = 10.0.0.7 => host = 127.0.0.99',
      'host = 10.0.0.9 => host = 127.0.0.10,127.0.0.11,127.0.0.12',
      'application = web-shop => host = 127.0.0.10,127.0.0.11,127.0.0.12',
    ]);
    expect(await runner.undo()).toBe(true);
    rule = YAML.parse((await zk.get(COND))!.data.toString('utf8'));
    expect(rule.conditions).toEqual(['host = 10.0.0.7 => host = 127.0.0.99']);
    // Without the foreign condition the node (and the parents graywave created) would go: take it out and undo again.
    await zk.remove(COND);
    await runner.close();
    removeDir(dir);
  }, 30_000);
});
