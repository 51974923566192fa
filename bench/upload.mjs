// Upload methods side by side: `node bench/upload.mjs [--reps N]` (after a build). 10 loopback hosts on two real
// sshd — one with the SFTP subsystem, one without (graywave then streams over an exec channel and checks SHA-256) —
// a 5 MB file to every host in parallel on fresh connections, with the login user's rc file free and costing 150 ms.
// Prints the median wall time per method. Decides which method graywave tries first (see README, Transports).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync, copyFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { SshTransport, sshTransportOptions } from '../dist/transport/ssh.js';
import { Secrets } from '../dist/util/secrets.js';

const args = process.argv.slice(2);
const REPS = args.includes('--reps') ? Number(args[args.indexOf('--reps') + 1]) : 5;
const N = 10;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const freePort = () =>
  new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });
const portOpen = (host, port) =>
  new Promise((res) => {
    const c = connect({ host, port });
    c.once('connect', () => (c.destroy(), res(true)));
    c.once('error', () => res(false));
  });

const D = mkdtempSync('/tmp/gwu-');
for (const k of ['hk', 'ck']) execFileSync('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(D, k)]);
copyFileSync(join(D, 'ck.pub'), join(D, 'ak'));
const hostPub = readFileSync(join(D, 'hk.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
const file = join(D, 'artifact.bin');
writeFileSync(file, randomBytes(5 * 2 ** 20));
const servers = [];
const fleets = {};
mkdirSync('/run/sshd', { recursive: true });
try {
  for (const [name, sftp, rc, base] of [
    ['sftp', true, 0, 2],
    ['exec', false, 0, 12],
    ['sftp-rc150', true, 0.15, 22],
    ['exec-rc150', false, 0.15, 32],
  ]) {
    const port = await freePort();
    const addrs = Array.from({ length: N }, (_, i) => `127.0.0.${base + i}`);
    const home = join(D, `home-${name}`);
    mkdirSync(home);
    writeFileSync(join(home, '.bashrc'), rc ? `sleep ${rc}\n` : '');
    const conf = join(D, `${name}.conf`);
    writeFileSync(
      conf,
      [
        `Port ${port}`,
        ...addrs.map((a) => `ListenAddress ${a}`),
        `HostKey ${join(D, 'hk')}`,
        `PidFile ${join(D, `${name}.pid`)}`,
        `AuthorizedKeysFile ${join(D, 'ak')}`,
        // As Debian's and RHEL's sshd_config have it: PAM's account and session modules run for every connection
        // (about 20 ms more of a host's CPU per connection here), as on the hosts the tools are used on.
        'UsePAM yes',
        'PasswordAuthentication no',
        'StrictModes no',
        'MaxStartups 100:30:200',
        'LogLevel ERROR',
        `SetEnv HOME=${home}`,
        ...(sftp ? ['Subsystem sftp internal-sftp'] : []),
      ].join('\n') + '\n',
    );
    servers.push(spawn('/usr/sbin/sshd', ['-D', '-e', '-f', conf], { stdio: 'ignore' }));
    writeFileSync(join(D, `kh-${name}`), addrs.map((a) => `[${a}]:${port} ${hostPub}`).join('\n') + '\n');
    while (!(await portOpen(addrs.at(-1), port))) await sleep(20);
    fleets[name] = { port, addrs };
  }
  const times = Object.fromEntries(Object.keys(fleets).map((k) => [k, []]));
  for (let rep = 0; rep < REPS; rep++) {
    for (const [name, f] of Object.entries(fleets)) {
      const t = new SshTransport(
        sshTransportOptions.parse({ user: 'root', port: f.port, identityFile: join(D, 'ck'), knownHostsFile: join(D, `kh-${name}`), configFile: false }),
        { dir: D, secrets: new Secrets(D, {}) },
      );
      const hosts = f.addrs.map((a) => ({ name: `${name}-${a}`, address: a, vars: {}, labels: {} }));
      await Promise.all(hosts.map((h) => t.exec(h, 'true'))); // connected: what a deploy step finds
      const t0 = performance.now();
      await Promise.all(hosts.map((h, i) => t.upload(h, file, join(D, `up-${name}-${i}`))));
      times[name].push(performance.now() - t0);
      await t.close();
    }
  }
  for (const [name, xs] of Object.entries(times))
    console.log(`${name.padEnd(11)} ${N} × 5 MB in parallel: median ${Math.round(median(xs))} ms (${xs.map(Math.round).join(', ')})`);
} finally {
  for (const s of servers) s.kill();
  rmSync(D, { recursive: true, force: true });
}
