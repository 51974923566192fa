/**
 * `state: {type: zookeeper}` against a real ZooKeeper: the lock is an ephemeral znode, the journal sequential
 * znodes, so another process (another machine) can watch, abort or resume the release, and two can never run it.
 * The scenarios shared with etcd are in helpers/state-suite.ts; here, how ZooKeeper shows them, and its own tests.
 */
import { expect, it } from 'vitest';
import { ZookeeperBackend, zookeeperStateOptions } from '../../src/journal/zookeeper-backend.js';
import { Zk } from '../../src/providers/zk.js';
import { playbookError, rec, stateSuite } from './helpers/state-suite.js';
import { hasZookeeper, ZooKeeperServer } from './helpers/zookeeper.js';

const has = hasZookeeper();

stateSuite<{ server: ZooKeeperServer; zk: Zk }>(
  {
    name: 'ZooKeeper',
    available: has,
    tempPrefix: 'gw-state-zk-',
    async start() {
      const server = await ZooKeeperServer.start();
      return { server, zk: new Zk({ connect: server.connect, sessionTimeoutMs: 4000, connectTimeoutMs: 5000, label: 'test' }) };
    },
    async stop({ server, zk }) {
      await zk.close();
      await server.stop();
    },
    backend: ({ server }, release, root) =>
      new ZookeeperBackend(zookeeperStateOptions.parse({ connect: server.connect, root, sessionTimeout: '10s' }), release),
    stateYaml: ({ server }, root, seconds) => `{ type: zookeeper, connect: "${server.connect}", root: ${root}, sessionTimeout: ${seconds}s }`,
    async expectLockDiesWithHolder({ zk }, root, release) {
      // The lock is an ephemeral node: it would die with our session.
      const lock = (await zk.get(`${root}/${release}/lock`))!;
      expect(lock.stat.ephemeralOwner.equals(Buffer.alloc(8))).toBe(false);
    },
    journalKeys: async ({ zk }, root, release) => ((await zk.children(`${root}/${release}/journal`)) ?? []).sort(),
    expectFirstJournalKey(key) {
      expect(key).toMatch(/^r-\d{10}$/);
    },
    async twoWriters(j1, j2) {
      // Without the lock, appends from two processes still never interleave inside a batch: one znode each.
      await Promise.all([j1.append(rec(1)), j2.append(rec(2))]);
      return 2;
    },
    async archived({ zk }, root, release) {
      const [stamp] = (await zk.children(`${root}/${release}/archive`)) ?? [];
      return {
        journalKeys: (await zk.children(`${root}/${release}/archive/${stamp}/journal`))?.length ?? -1,
        controls: (await zk.children(`${root}/${release}/archive/${stamp}/control`)) ?? [],
      };
    },
    lockGone: async ({ zk }, root, release) => !(await zk.exists(`${root}/${release}/lock`)),
    expiry: { title: 'its session expires', waitingFor: 'the session to expire', staleHint: 'its ZooKeeper session expires' },
  },
  ({ temp }) => {
    it('playbook: state options are checked strictly, with positions', () => {
      const err = playbookError(temp(), ['type: zookeeper', 'connect: "zk1:2181 zk2:2181"', 'sessionTimeout: soon', 'bogus: 1', 'endpoints: [x]']);
      expect(err?.message).toMatch(/playbook\.yaml:9:3: unknown key "bogus"/);
      expect(err?.message).toMatch(/playbook\.yaml:10:3: unknown key "endpoints"/);
      expect(err?.message).toMatch(/playbook\.yaml:8:\d+: state\.sessionTimeout: not a duration/);
      expect(err?.message).toMatch(/playbook\.yaml:7:\d+: state\.connect: must be host:port/);
    });
  },
);
