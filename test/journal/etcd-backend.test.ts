import { describe, expect, it } from 'vitest';
import { EtcdBackend, etcdStateOptions } from '../../src/journal/etcd-backend.js';
import { Secrets } from '../../src/util/secrets.js';

/**
 * What an append says when etcd refuses it (the transaction's guards failed), by what the lock reads afterwards.
 * The etcd client is replaced by one that answers like etcd would (a refused transaction, then the lock read); the
 * real-etcd paths (lost lease, second writer) are in test/integration/state-etcd.test.ts.
 */
function backendWith(lock: () => Promise<{ lease: string } | undefined>): EtcdBackend {
  const b = new EtcdBackend(etcdStateOptions.parse({ endpoints: ['127.0.0.1:1'] }), 'rel', new Secrets('/tmp', {}));
  const txn = { and: () => txn, then: () => txn, commit: async () => ({ succeeded: false }) };
  const fake = {
    if: () => txn,
    put: () => ({ value: () => ({}) }),
    get: () => ({ exec: async () => ({ kvs: [await lock()].filter(Boolean) }) }),
  };
  Object.assign(b as object, { client: fake, leaseId: '7587' });
  return b;
}

describe('etcd journal append refused', () => {
  it('the lock cannot be read back: the state is unknown, not "lost the release lock"', async () => {
    const b = backendWith(async () => {
      throw new Error('14 UNAVAILABLE: No connection established');
    });
    const err = await b.appendChunks(1, ['{"type":"x"}']).catch((e: Error) => e);
    expect(String(err)).toMatch(/could not be read back \(.*UNAVAILABLE.*\): whether this process still holds the release is unknown/);
    expect(String(err)).not.toMatch(/lost the release lock/);
  });

  it('the lock is gone or another lease holds it: lost the release lock', async () => {
    for (const lock of [async () => undefined, async () => ({ lease: '9999' })]) {
      const err = await backendWith(lock)
        .appendChunks(1, ['{"type":"x"}'])
        .catch((e: Error) => e);
      expect(String(err)).toMatch(/lost the release lock \/graywave\/rel\/lock/);
    }
  });

  it('the lock is still ours: another writer appended', async () => {
    const err = await backendWith(async () => ({ lease: '7587' }))
      .appendChunks(1, ['{"type":"x"}'])
      .catch((e: Error) => e);
    expect(String(err)).toMatch(/another process appended to the journal/);
  });
});
