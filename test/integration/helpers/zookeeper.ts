import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { freePort, removeDir, requireBinary, startProcess, tempDir, waitFor, type Server } from './process.js';

/**
 * A real ZooKeeper 3.8 (Debian packages zookeeper + libslf4j-java) on 127.0.0.1 and a free port, in a temp dir.
 * Start it once per test file. `restart` keeps the data dir and the port (a connection-loss test).
 */

const JAR = '/usr/share/java/zookeeper.jar';
const SLF4J = '/usr/share/java/slf4j-simple.jar';

export function hasZookeeper(): boolean {
  return (
    requireBinary(JAR, 'apt-get install -y --no-install-recommends zookeeper') &&
    requireBinary('/usr/bin/java', 'apt-get install -y --no-install-recommends default-jre-headless')
  );
}

/** Send a four-letter word and return the answer. */
export function fourLetter(port: number, word: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let out = '';
    s.setTimeout(1000, () => s.destroy(new Error('timeout')));
    s.on('connect', () => s.write(word));
    s.on('data', (d) => (out += d.toString()));
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
}

export class ZooKeeperServer {
  server?: Server;
  constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  get connect(): string {
    return `127.0.0.1:${this.port}`;
  }

  static async start(): Promise<ZooKeeperServer> {
    const dir = tempDir('zk');
    const zk = new ZooKeeperServer(dir, await freePort());
    mkdirSync(join(dir, 'data'), { recursive: true });
    writeFileSync(
      join(dir, 'zoo.cfg'),
      [
        'tickTime=500', // short ticks: min session timeout 1 s, so dead test sessions go away fast
        `dataDir=${join(dir, 'data')}`,
        `clientPort=${zk.port}`,
        'clientPortAddress=127.0.0.1',
        'admin.enableServer=false',
        '4lw.commands.whitelist=ruok,srvr,stat',
        '',
      ].join('\n'),
    );
    await zk.up();
    return zk;
  }

  private async up(): Promise<void> {
    const cp = [JAR, SLF4J].join(':');
    this.server = startProcess('java', ['-Xmx256m', '-cp', cp, 'org.apache.zookeeper.server.quorum.QuorumPeerMain', join(this.dir, 'zoo.cfg')], {
      dir: this.dir,
      name: 'zookeeper',
    });
    // `ruok` answers before the server serves; `srvr` only shows `Mode:` once it does.
    await waitFor(async () => /^Mode:/m.test(await fourLetter(this.port, 'srvr')), `ZooKeeper on ${this.connect}`, { server: this.server, timeoutMs: 30_000 });
  }

  /** Stop the server (SIGKILL: a crash, no clean shutdown). */
  async kill(): Promise<void> {
    await this.server?.stop('SIGKILL', 1000);
  }

  async restart(): Promise<void> {
    await this.server?.stop('SIGTERM', 5000);
    await this.up();
  }

  async stop(): Promise<void> {
    await this.server?.stop('SIGTERM', 5000);
    removeDir(this.dir);
  }
}

/** Every znode under `root` (except /zookeeper) with its data, path-sorted: compare before/after byte for byte. */
export async function dumpTree(zk: import('../../../src/providers/zk.js').Zk, root = '/'): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (path: string) => {
    if (path === '/zookeeper') return;
    const node = await zk.get(path);
    if (!node) return;
    out[path] = node.data.toString('base64');
    for (const c of ((await zk.children(path)) ?? []).sort()) await walk(path === '/' ? `/${c}` : `${path}/${c}`);
  };
  await walk(root);
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Delete `path` and everything below it (test cleanup between cases). */
export async function removeTree(zk: import('../../../src/providers/zk.js').Zk, path: string): Promise<void> {
  for (const c of (await zk.children(path)) ?? []) await removeTree(zk, `${path}/${c}`);
  await zk.remove(path);
}
