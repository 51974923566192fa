import { Resolver } from 'node:dns/promises';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireBinary, startProcess, waitFor, type Server } from './process.js';

/**
 * A real DNS server (dnsmasq, Debian package dnsmasq-base) answering only the given names, and a resolv.conf that
 * points at it. Programs see it through `inNamespace()`: a mount namespace in which that file is /etc/resolv.conf,
 * so glibc's getaddrinfo (ssh's resolve_host, Node's dns.lookup) asks it, and nothing else on the machine changes.
 */
export const DNSMASQ = '/usr/sbin/dnsmasq';
export const hasDns = (): boolean =>
  requireBinary(DNSMASQ, 'apt-get install -y dnsmasq-base') && requireBinary('/usr/bin/unshare', 'apt-get install -y util-linux');

export interface Dns {
  address: string;
  resolvConf: string;
  server: Server;
  /** `cmd args` as run inside the mount namespace that has our resolv.conf. */
  inNamespace(cmd: string, args: string[]): [string, string[]];
  stop(): Promise<void>;
}

export async function startDns(records: Record<string, string>, dir: string): Promise<Dns> {
  // An address of its own per test process (port 53 is the only port a resolv.conf can name).
  const address = `127.0.53.${2 + (process.pid % 250)}`;
  const server = startProcess(
    DNSMASQ,
    [
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      `--listen-address=${address}`,
      '--bind-interfaces',
      '--port=53',
      '--no-resolv',
      '--no-hosts',
      '--log-queries',
      '--log-facility=-',
      `--pid-file=${join(dir, 'dnsmasq.pid')}`,
      ...Object.entries(records).map(([name, ip]) => `--host-record=${name},${ip}`),
    ],
    { dir, name: 'dnsmasq' },
  );
  const resolver = new Resolver({ timeout: 500, tries: 1 });
  resolver.setServers([address]);
  const [first] = Object.keys(records);
  await waitFor(async () => (await resolver.resolve4(first!).catch(() => [])).length > 0, `dnsmasq on ${address}:53`, { server, timeoutMs: 15_000 });
  const resolvConf = join(dir, 'resolv.conf');
  writeFileSync(resolvConf, `nameserver ${address}\noptions timeout:1 attempts:1\n`);
  return {
    address,
    resolvConf,
    server,
    inNamespace: (cmd, args) => ['/usr/bin/unshare', ['-m', '/bin/sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', resolvConf, cmd, ...args]],
    stop: () => server.stop(),
  };
}
