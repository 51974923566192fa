import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, removeDir, requireBinary, startProcess, tempDir, waitFor, type Server } from './process.js';

export const ETCD_BIN = '/usr/bin/etcd';

/** True when etcd is installed; throws under CI=true when it is not (a missing server fails the file). */
export function hasEtcd(): boolean {
  return requireBinary(ETCD_BIN, 'apt-get install -y --no-install-recommends etcd-server etcd-client');
}

export interface EtcdServer {
  endpoint: string;
  server: Server;
  stop(): Promise<void>;
}

/** A single-member etcd on loopback free ports, in a temp dir. Start it once per test file. */
export async function startEtcd(): Promise<EtcdServer> {
  const dir = tempDir('etcd');
  mkdirSync(join(dir, 'data'));
  const [client, peer] = [await freePort(), await freePort()];
  const endpoint = `http://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const server = startProcess(
    ETCD_BIN,
    [
      '--name',
      't1',
      '--data-dir',
      join(dir, 'data'),
      '--listen-client-urls',
      endpoint,
      '--advertise-client-urls',
      endpoint,
      '--listen-peer-urls',
      peerUrl,
      '--initial-advertise-peer-urls',
      peerUrl,
      '--initial-cluster',
      `t1=${peerUrl}`,
      '--initial-cluster-state',
      'new',
      '--logger=zap',
      '--log-outputs=stderr',
    ],
    { dir, name: 'etcd' },
  );
  await waitFor(
    async () => {
      const res = await fetch(`${endpoint}/health`);
      return res.ok && (await res.text()).includes('"health":"true"');
    },
    'etcd',
    { server, timeoutMs: 20_000 },
  );
  return {
    endpoint,
    server,
    async stop() {
      await server.stop('SIGTERM', 3_000);
      removeDir(dir);
    },
  };
}
