/**
 * `state: {type: etcd}` against a real etcd: the journal, the lock and the control requests live in the cluster,
 * so another process (another machine) can watch, abort or resume the release, and two can never run it.
 * The scenarios shared with ZooKeeper are in helpers/state-suite.ts; here, how etcd shows them, and its own tests.
 */
import { Etcd3 } from 'etcd3';
import { expect, it } from 'vitest';
import { EtcdBackend, etcdStateOptions } from '../../src/journal/etcd-backend.js';
import { Secrets } from '../../src/util/secrets.js';
import { hasEtcd, startEtcd, type EtcdServer } from './helpers/etcd.js';
import { playbookError, rec, stateSuite } from './helpers/state-suite.js';

const has = hasEtcd();

stateSuite<{ etcd: EtcdServer; client: Etcd3 }>(
  {
    name: 'etcd',
    available: has,
    tempPrefix: 'gw-state-etcd-',
    async start() {
      const etcd = await startEtcd();
      return { etcd, client: new Etcd3({ hosts: etcd.endpoint }) };
    },
    async stop({ etcd, client }) {
      client.close();
      await etcd.stop();
    },
    backend: ({ etcd }, release, root) =>
      new EtcdBackend(etcdStateOptions.parse({ endpoints: [etcd.endpoint], prefix: root, ttl: '60s' }), release, new Secrets('/')),
    stateYaml: ({ etcd }, root, seconds) => `{ type: etcd, endpoints: ["${etcd.endpoint}"], prefix: ${root}, ttl: ${seconds}s }`,
    async expectLockDiesWithHolder({ client }, root, release) {
      // The lock key is on a lease: it would die with us.
      const kv = (await client.get(`${root}/${release}/lock`).exec()).kvs[0]!;
      expect(String(kv.lease)).not.toBe('0');
    },
    journalKeys: ({ client }, root, release) => client.getAll().prefix(`${root}/${release}/journal/`).keys(),
    expectFirstJournalKey(key) {
      expect(key).toBe('/gw/unit/journal/0000000000000001');
    },
    async twoWriters(j1, j2) {
      // The second one's key already exists, so it fails instead of interleaving.
      await j1.append(rec(1));
      await expect(j2.append(rec(2))).rejects.toThrow(/another process appended to the journal/);
      return 1;
    },
    async archived({ client }, root, release) {
      const keys = await client.getAll().prefix(`${root}/${release}/archive/`).keys();
      return {
        journalKeys: keys.filter((k) => /\/archive\/\d+\/journal\//.test(k)).length,
        controls: keys.flatMap((k) => /\/archive\/\d+\/control\/([^/]+)$/.exec(k)?.[1] ?? []),
      };
    },
    lockGone: async ({ client }, root, release) => (await client.get(`${root}/${release}/lock`).exec()).kvs.length === 0,
    expiry: { title: 'the lease expires', waitingFor: 'the lease to expire', staleHint: 'its etcd lease expires' },
  },
  ({ temp }) => {
    it('playbook: state options are checked strictly, with positions', () => {
      const err = playbookError(temp(), ['type: etcd', 'endpoints: [http://127.0.0.1:1]', 'ttl: 500ms', 'bogus: 1', 'password: plain']);
      expect(err?.message).toMatch(/playbook\.yaml:9:3: unknown key "bogus"/);
      expect(err?.message).toMatch(/playbook\.yaml:8:\d+: state\.ttl: ttl must be whole seconds, at least 2s/);
      expect(err?.message).toMatch(
        /playbook\.yaml:10:\d+: state\.password: .*got a value written in the file \(not shown: put the secret in the environment or a file\)/,
      );
      expect(err?.message).not.toContain('plain');
    });
  },
);
