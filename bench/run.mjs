// graywave benchmark: `npm run bench` (builds first), or `node bench/run.mjs [ssh] [real] [scale] [--reps N]`.
//   ssh:   graywave vs ansible-playbook, the same 6-step release on 40 hosts (loopback addresses 127.0.0.2-41 served by
//          three real OpenSSH sshd), alternating, N repetitions each; medians and ratios.
//   real:  the same release on 20 hosts as they come: the login user's ~/.bashrc costs 150 ms and sshd has no SFTP
//          subsystem; graywave vs ansible-playbook vs ansible-playbook with Mitogen (strategy: mitogen_linear).
//   scale: the real engine over 1,000 and 10,000 simulated in-process hosts (no processes per host), concurrency 200;
//          then `graywave status` and `graywave resume` on the 10,000-host journal.
// Prints a table and writes bench/results.json, bench/RESULTS.md and the same table into README.md's Performance section.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH, '..');
const CLI = join(ROOT, 'bin', 'graywave.js');
const args = process.argv.slice(2);
const parts = args.filter((a) => !a.startsWith('--') && !/^\d+$/.test(a));
const want = (p) => parts.length === 0 || parts.includes(p);
const repsArg = args.indexOf('--reps');
const REPS = repsArg >= 0 ? Number(args[repsArg + 1]) : 3;
// `--only graywave|ansible`: one side of the SSH comparison (for profiling; the table then has gaps).
const onlyArg = args.indexOf('--only');
const ONLY = onlyArg >= 0 ? args[onlyArg + 1] : undefined;
const SCALE_REPS = 3;
const HOSTS = 40;
// The realistic part: hosts whose login user's rc file costs this long (pyenv, nvm, conda …), without SFTP.
const REAL_HOSTS = 20;
const REAL_RC_SECONDS = 0.15;
const MITOGEN_STRATEGIES = '/usr/lib/python3/dist-packages/ansible_mitogen/plugins/strategy';
const STEP_SLEEP = '0.5'; // wait-drained: seconds between its two polls

const median = (xs) => {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const r1 = (x) => Math.round(x * 10) / 10;
const r2 = (x) => Math.round(x * 100) / 100;
const log = (...a) => console.error('[bench]', ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function machine() {
  const model = (readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m) ?? [])[1] ?? cpus()[0]?.model ?? '?';
  let os = '?';
  try {
    os = (readFileSync('/etc/os-release', 'utf8').match(/^PRETTY_NAME="?([^"\n]*)/m) ?? [])[1] ?? '?';
  } catch {}
  const ver = (cmd, a) => {
    try {
      return execFileSync(cmd, a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
        .split('\n')[0]
        .trim();
    } catch (e) {
      return (e.stderr ?? '').toString().split('\n')[0].trim() || 'absent';
    }
  };
  return {
    nproc: cpus().length,
    model,
    memGb: r1(totalmem() / 2 ** 30),
    os,
    node: process.version,
    loadavg: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
    ansible: ver('/usr/bin/ansible-playbook', ['--version']),
    openssh: spawnSync('ssh', ['-V'], { encoding: 'utf8' }).stderr.trim().split(',')[0],
    date: new Date().toISOString(),
  };
}

/** Busy jiffies of the whole machine (all cores), from /proc/stat: catches sshd, remote commands, ssh muxes. */
function machineCpuSeconds() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7]; // user nice system irq softirq steal
  return busy / 100; // USER_HZ
}

/** CPU seconds (user+sys) of a process (`self`) or of its reaped children (`children`), from /proc/PID/stat. */
function procCpuSeconds(pid, which = 'self') {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(') ') + 2).split(' ');
    return (which === 'self' ? Number(f[11]) + Number(f[12]) : Number(f[13]) + Number(f[14])) / 100; // USER_HZ
  } catch {
    return 0;
  }
}

/**
 * CPU of the hosts' side so far: everything the fleet's sshd listeners started and reaped (the sessions, the shells
 * and every command on the "hosts"). Exact and unaffected by other work on a shared machine, once the sessions have
 * ended: waits (up to 5 s) until the listeners have no children left.
 */
async function hostsCpuSeconds(pids) {
  const live = () =>
    readdirSync('/proc').some((p) => {
      if (!/^\d+$/.test(p)) return false;
      try {
        const s = readFileSync(`/proc/${p}/stat`, 'utf8');
        return pids.includes(Number(s.slice(s.lastIndexOf(') ') + 2).split(' ')[1]));
      } catch {
        return false;
      }
    });
  for (let k = 0; k < 100 && live(); k++) await sleep(50);
  return pids.reduce((a, pid) => a + procCpuSeconds(pid, 'children'), 0);
}

/** Runs a command under /usr/bin/time: wall, user+sys of it and its reaped children, max RSS of the largest one. */
async function timed(cmd, argv, opts) {
  const tf = join(opts.dir, `time-${Date.now()}-${Math.random().toString(36).slice(2)}.txt`);
  // Memory of everything the run starts, at both ends (bench/rss-sampler.mjs), sampled by a process of its own.
  const rf = `${tf}.rss.json`;
  const roots = [process.pid, ...(opts.fleetPids ?? [])].join(',');
  const sampler = spawn(process.execPath, [join(BENCH, 'rss-sampler.mjs'), rf, roots, opts.dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((res) => sampler.stdout.once('data', res));
  const s0 = procCpuSeconds(sampler.pid);
  const c0 = machineCpuSeconds();
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S %M', '-o', tf, cmd, ...argv], {
    cwd: opts.cwd,
    env: opts.env,
    encoding: 'utf8',
    maxBuffer: 512 * 2 ** 20,
  });
  const wall = (performance.now() - t0) / 1000;
  // The sampler's own CPU is not the run's: left out of the machine's figure.
  const samplerCpu = procCpuSeconds(sampler.pid) - s0;
  const machineCpu = machineCpuSeconds() - c0 - samplerCpu;
  const stopped = new Promise((res) => sampler.once('exit', res));
  sampler.kill('SIGTERM');
  await stopped;
  const rss = JSON.parse(readFileSync(rf, 'utf8'));
  const [e, u, s, m] = readFileSync(tf, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  return {
    code: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    wall,
    timeWall: e,
    cpu: u + s,
    user: u,
    sys: s,
    maxRssMb: m / 1024,
    machineCpu,
    samplerCpu,
    runRssMb: rss.peakMb,
    runProcesses: rss.processes,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// ssh: graywave vs ansible-playbook
// ---------------------------------------------------------------------------------------------------------------

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });
}

function portOpen(host, port) {
  return new Promise((res) => {
    const c = connect({ host, port });
    c.once('connect', () => (c.destroy(), res(true)));
    c.once('error', () => res(false));
  });
}

const addr = (i) => `127.0.0.${i + 2}`; // host i (0-based) -> 127.0.0.2 … 127.0.0.41
const hname = (i) => `h${String(i + 2).padStart(2, '0')}`;

/**
 * `n` loopback hosts served by real sshd. The login user (root) gets a home of the fleet's own (sshd's SetEnv HOME)
 * whose ~/.bashrc costs `rcSeconds`, like a real host's: this machine's own root rc files (pyenv init) would make the
 * figures depend on the machine. `sftp: false`: no SFTP subsystem, as on hardened hosts.
 */
async function startFleet(D, { n = HOSTS, rcSeconds = 0, sftp = true } = {}) {
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const S = join(D, 'sshd');
  mkdirSync(S, { recursive: true });
  for (const k of ['host_ed25519_key', 'client_key'])
    execFileSync('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'graywave-bench', '-f', join(S, k)]);
  copyFileSync(join(S, 'client_key.pub'), join(S, 'authorized_keys'));
  const home = join(D, 'home');
  mkdirSync(home, { recursive: true });
  writeFileSync(join(home, '.bashrc'), rcSeconds ? `# what tools that set up PATH (pyenv init, nvm, conda) cost\nsleep ${rcSeconds}\n` : '');
  let port = await freePort();
  // sshd binds each address separately; make sure the port is free on all 40.
  for (let tries = 0; tries < 5; tries++) {
    const busy = (await Promise.all(Array.from({ length: n }, (_, i) => portOpen(addr(i), port)))).some(Boolean);
    if (!busy) break;
    port = await freePort();
  }
  const hostPub = readFileSync(join(S, 'host_ed25519_key.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
  writeFileSync(join(S, 'known_hosts'), Array.from({ length: n }, (_, i) => `[${addr(i)}]:${port} ${hostPub}\n`).join(''));
  const groups = [];
  for (let a = 0; a < n; a += 16) groups.push([a, Math.min(n, a + 16)]);
  const servers = [];
  for (const [gi, [a, b]] of groups.entries()) {
    const name = 'abc'[gi];
    const cfg = [
      `Port ${port}`,
      ...Array.from({ length: b - a }, (_, k) => `ListenAddress ${addr(a + k)}`),
      `HostKey ${S}/host_ed25519_key`,
      `PidFile ${S}/${name}.pid`,
      `AuthorizedKeysFile ${S}/authorized_keys`,
      // As Debian's and RHEL's sshd_config have it: PAM's account and session modules run for every connection
      // (about 20 ms more of a host's CPU per connection here), as on the hosts the tools are used on.
      'UsePAM yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'PermitRootLogin prohibit-password',
      'StrictModes no',
      'MaxStartups 100:30:200',
      'MaxSessions 50',
      // graywave's deploy and ansible's copy prefer SFTP. OpenSSH's sftp-server program, as Debian, Ubuntu and RHEL
      // configure it (sshd starts it through the login shell, which reads its rc file), not the built-in internal-sftp.
      ...(sftp ? ['Subsystem sftp /usr/lib/openssh/sftp-server'] : []),
      'LogLevel ERROR',
      `SetEnv HOME=${home}`,
    ].join('\n');
    writeFileSync(join(S, `${name}.conf`), cfg + '\n');
    execFileSync('/usr/sbin/sshd', ['-t', '-f', join(S, `${name}.conf`)]);
    const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(S, `${name}.conf`)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c) => (err += c));
    servers.push({ child, last: addr(b - 1), err: () => err });
  }
  const deadline = Date.now() + 10_000;
  for (const s of servers) {
    while (!(await portOpen(s.last, port))) {
      if (s.child.exitCode !== null || Date.now() > deadline) throw new Error(`sshd did not start: ${s.err()}`);
      await sleep(20);
    }
  }
  return {
    port,
    pids: servers.map((s) => s.child.pid),
    key: join(S, 'client_key'),
    knownHosts: join(S, 'known_hosts'),
    async stop() {
      for (const s of servers) if (s.child.exitCode === null) s.child.kill('SIGTERM');
      await Promise.all(servers.map((s) => (s.child.exitCode !== null ? null : new Promise((r) => s.child.once('exit', r)))));
    },
  };
}

/** The per-host commands both tools run (identical), each recording its own run time on the host. */
function writeHostScript(D) {
  const B = join(D, 'bin');
  mkdirSync(B, { recursive: true });
  const script = `#!/bin/bash
# gwb STEP HOST [ARG]: one step of the benchmark release on a (simulated-by-loopback) host.
# Appends "HOST STEP MICROSECONDS" to $ROOT/times.log: the host's own time for the step.
set -e
t0=$(date +%s%N)
ROOT=${D}
S=$ROOT/hosts/$2
mkdir -p "$S"
case "$1" in
  drain)   # the equivalent of a one-znode write: take the host out of the registry
           printf '0\\n' > "$S/weight"; printf '3\\n' > "$S/inflight" ;;
  wait)    # wait until drained: poll the in-flight counter; it reads 0 on the 2nd poll
           for p in 1 2 3 4 5; do
             if [ "$p" -ge 2 ]; then printf '0\\n' > "$S/inflight"; fi
             [ "$(cat "$S/inflight")" = 0 ] && break
             sleep ${STEP_SLEEP}
           done
           [ "$(cat "$S/inflight")" = 0 ] ;;
  stop)    printf 'stopped\\n' > "$S/state" ;;
  start)   printf 'running\\n' > "$S/state"; printf '%s\\n' "$3" > "$S/group" ;;
  restore) printf '100\\n' > "$S/weight" ;;
  *)       echo "unknown step $1" >&2; exit 2 ;;
esac
echo "$2 $1 $(( ($(date +%s%N) - t0) / 1000 ))" >> "$ROOT/times.log"
`;
  writeFileSync(join(B, 'gwb'), script);
  chmodSync(join(B, 'gwb'), 0o755);
  return join(B, 'gwb');
}

/** The release's waves of 25% (as both tools run them): host indexes, wave by wave. */
function wavesOf(n) {
  const size = Math.ceil(n * 0.25);
  const waves = [];
  for (let w = 0; w < n; w += size) waves.push(Array.from({ length: Math.min(size, n - w) }, (_, k) => w + k));
  return waves;
}

/** The deploy's own work on a host, as a shell command: copy the artifact into the release dir, checksum it, switch the link. */
const deployWork = (artifact, to) =>
  `mkdir -p ${to}/releases/2.0.0 && cp ${artifact} ${to}/releases/2.0.0/ && sha256sum ${to}/releases/2.0.0/app-2.0.0.bin >/dev/null && ln -sfn ${to}/releases/2.0.0 ${to}/current`;

/**
 * The floor: the same steps and the same deploy work run by plain bash on this machine, a wave's hosts in parallel
 * (as with concurrency 10), with no SSH and no tool. On loopback the 40 "hosts" share this machine's cores with the
 * tool, so the steps' own processes (each `gwb` is a bash with forks of its own) slow each other down; what this takes
 * beyond the hosts' own step time is that sharing, which no tool can remove here. Run by `npm run bench` beside the
 * tools, so that their overhead can be read against it.
 */
function writeFloor(D, gwb, artifact, n) {
  const host = (i) => {
    const h = hname(i);
    return (
      `( ${gwb} drain ${h} && ${gwb} wait ${h} && ${gwb} stop ${h} && ${deployWork(artifact, `${D}/hosts/${h}/app`)} && ` +
      `${gwb} start ${h} GREEN && ${gwb} restore ${h} ) &`
    );
  };
  const script = ['#!/bin/bash', '# The floor of the 40-host bench (bench/run.mjs writeFloor): the steps alone, a wave at a time.', 'set -e'];
  for (const wave of wavesOf(n)) script.push(...wave.map(host), 'for p in $(jobs -p); do wait "$p"; done');
  writeFileSync(join(D, 'floor.sh'), script.join('\n') + '\n');
  return join(D, 'floor.sh');
}

function writeGraywave(D, fleet, gwb, artifact, n) {
  const G = join(D, 'graywave');
  mkdirSync(G, { recursive: true });
  const hosts = Array.from({ length: n }, (_, i) => `  - { name: ${hname(i)}, address: ${addr(i)} }`).join('\n');
  const yaml = `name: bench40
version: "2.0.0"
group: GREEN
transport: { type: ssh, user: root, port: ${fleet.port}, identityFile: ${fleet.key}, knownHostsFile: ${fleet.knownHosts}, configFile: false }
waves: { size: 25%, concurrency: 10, maxFailures: 0, pause: none }
hosts:
${hosts}
steps:
  - { name: drain, run: "${gwb} drain {{host.name}}" }
  - { name: wait-drained, run: "${gwb} wait {{host.name}}" }
  - { name: stop, run: "${gwb} stop {{host.name}}" }
  - name: deploy
    deploy: { artifact: ${artifact}, to: "${D}/hosts/{{host.name}}/app" }
  - { name: start, run: "${gwb} start {{host.name}} {{group}}" }
  - { name: restore, run: "${gwb} restore {{host.name}}" }
`;
  writeFileSync(join(G, 'bench40.yaml'), yaml);
  return join(G, 'bench40.yaml');
}

function writeAnsible(D, fleet, gwb, artifact, n, { mitogen = false } = {}) {
  const A = join(D, mitogen ? 'mitogen' : 'ansible');
  for (const d of ['tmp/local', 'tmp/remote', 'cp']) mkdirSync(join(A, d), { recursive: true });
  writeFileSync(
    join(A, 'ansible.cfg'),
    `[defaults]
inventory = ${A}/inventory.ini
host_key_checking = False
forks = 10
interpreter_python = /usr/bin/python3
gathering = explicit
retry_files_enabled = False
local_tmp = ${A}/tmp/local
remote_tmp = ${A}/tmp/remote
deprecation_warnings = False
${mitogen ? `strategy_plugins = ${MITOGEN_STRATEGIES}\nstrategy = mitogen_linear\n` : ''}
[ssh_connection]
pipelining = True
ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o LogLevel=ERROR
control_path_dir = ${A}/cp
`,
  );
  writeFileSync(
    join(A, 'inventory.ini'),
    `[targets]\n${Array.from({ length: n }, (_, i) => `${hname(i)} ansible_host=${addr(i)}`).join('\n')}\n\n[targets:vars]\nansible_port=${fleet.port}\nansible_user=root\nansible_ssh_private_key_file=${fleet.key}\n`,
  );
  writeFileSync(
    join(A, 'play.yml'),
    `- hosts: targets
  gather_facts: false
  serial: "25%"
  max_fail_percentage: 0
  vars:
    version: "2.0.0"
    app: "${D}/hosts/{{ inventory_hostname }}/app"
  tasks:
    - name: drain
      command: ${gwb} drain {{ inventory_hostname }}
    - name: wait-drained
      command: ${gwb} wait {{ inventory_hostname }}
    - name: stop
      command: ${gwb} stop {{ inventory_hostname }}
    - name: deploy (upload the artifact)
      copy: { src: "${artifact}", dest: "{{ app }}/releases/{{ version }}/", mode: "0644" }
    - name: deploy (switch current)
      file: { src: "{{ app }}/releases/{{ version }}", dest: "{{ app }}/current", state: link, force: true }
    - name: start
      command: ${gwb} start {{ inventory_hostname }} GREEN
    - name: restore
      command: ${gwb} restore {{ inventory_hostname }}
`,
  );
  return A;
}

/**
 * 40 bare logins: OpenSSH's `ssh HOST true` to every host, a wave of 10 at a time, as the release connects. What the
 * hosts' side (sshd, PAM, the login shell) costs for the connections alone, which any SSH tool pays; measured so that
 * the floor and the tools' figures can be read against it.
 */
async function bareLogins(fleet, n) {
  const h0 = await hostsCpuSeconds(fleet.pids);
  const t0 = performance.now();
  for (const wave of wavesOf(n)) {
    await Promise.all(
      wave.map(addr).map(
        (a) =>
          new Promise((res, rej) => {
            const c = spawn(
              'ssh',
              [
                '-F',
                '/dev/null',
                '-i',
                fleet.key,
                '-o',
                `UserKnownHostsFile=${fleet.knownHosts}`,
                '-o',
                'BatchMode=yes',
                '-p',
                String(fleet.port),
                `root@${a}`,
                'true',
              ],
              { stdio: 'ignore' },
            );
            c.on('error', rej);
            c.on('exit', (code) => (code === 0 ? res() : rej(new Error(`ssh ${a} true: exit ${code}`))));
          }),
      ),
    );
  }
  return { wall: (performance.now() - t0) / 1000, hostsCpu: (await hostsCpuSeconds(fleet.pids)) - h0 };
}

/**
 * Close ansible's ControlPersist masters (daemonized): ssh -O exit per socket, then any left by PID. Returns the CPU
 * seconds the masters had used (their parent is init, so /usr/bin/time never counts them).
 */
function sweepMasters(A) {
  const cp = join(A, 'cp');
  let cpu = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith(`ssh: ${cp}/`)) cpu += procCpuSeconds(pid);
    } catch {}
  }
  for (const f of existsSync(cp) ? readdirSync(cp) : []) spawnSync('ssh', ['-O', 'exit', '-o', `ControlPath=${join(cp, f)}`, 'x'], { stdio: 'ignore' });
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.startsWith(`ssh: ${cp}/`)) process.kill(Number(pid), 'SIGTERM');
    } catch {}
  }
  return cpu;
}

/** The unavoidable part of a run: per wave, the slowest host's own step time (from times.log), summed. */
function unavoidable(D, deployOwnS, n) {
  const per = new Map();
  const file = join(D, 'times.log');
  if (!existsSync(file)) return { seconds: NaN, lines: 0 };
  const lines = readFileSync(file, 'utf8').trim().split('\n').filter(Boolean);
  for (const l of lines) {
    const [h, , us] = l.split(' ');
    per.set(h, (per.get(h) ?? 0) + Number(us) / 1e6);
  }
  let total = 0;
  for (const wave of wavesOf(n)) total += Math.max(0, ...wave.map((i) => (per.get(hname(i)) ?? NaN) + deployOwnS));
  return { seconds: total, lines: lines.length };
}

function verifyFleet(D, n) {
  let ok = 0;
  for (let i = 0; i < n; i++) {
    const S = join(D, 'hosts', hname(i));
    try {
      const cur = execFileSync('readlink', [join(S, 'app', 'current')], { encoding: 'utf8' }).trim();
      const group = readFileSync(join(S, 'group'), 'utf8').trim();
      const weight = readFileSync(join(S, 'weight'), 'utf8').trim();
      const size = readFileSync(join(cur, 'app-2.0.0.bin')).length;
      if (cur.endsWith('/releases/2.0.0') && group === 'GREEN' && weight === '100' && size === 5 * 2 ** 20) ok++;
    } catch {}
  }
  return ok;
}

/**
 * The SSH comparison. `real`: the realistic part (REAL_HOSTS hosts, a 150 ms rc file, no SFTP, a Mitogen column);
 * else the 40-host part (a free rc file, SFTP).
 */
async function benchSsh(real = false) {
  if (!existsSync('/usr/sbin/sshd') || !existsSync('/usr/bin/ansible-playbook') || !existsSync('/usr/bin/time')) {
    log('ssh part skipped: needs /usr/sbin/sshd (openssh-server), /usr/bin/ansible-playbook (ansible-core) and /usr/bin/time');
    return { skipped: 'openssh-server, ansible-core or time missing' };
  }
  const n = real ? REAL_HOSTS : HOSTS;
  const tools = ['graywave', 'ansible'];
  if (!real) tools.push('floor');
  if (real) {
    if (existsSync(MITOGEN_STRATEGIES)) tools.push('mitogen');
    else log(`Mitogen column skipped: ${MITOGEN_STRATEGIES} missing (apt-get install ansible-mitogen)`);
  }
  const D = mkdtempSync('/tmp/gwb-'); // short: ssh ControlPath sockets must stay under ~107 bytes
  const fleet = await startFleet(D, real ? { n, rcSeconds: REAL_RC_SECONDS, sftp: false } : { n });
  log(`sshd fleet: ${n} addresses ${addr(0)}-${addr(n - 1)} port ${fleet.port}, dir ${D}${real ? `, rc file ${REAL_RC_SECONDS} s, no SFTP` : ''}`);
  try {
    const gwb = writeHostScript(D);
    const artifact = join(D, 'app-2.0.0.bin');
    writeFileSync(artifact, randomBytes(5 * 2 ** 20));
    const playbook = writeGraywave(D, fleet, gwb, artifact, n);
    const A = writeAnsible(D, fleet, gwb, artifact, n);
    const M = writeAnsible(D, fleet, gwb, artifact, n, { mitogen: true });
    const floor = writeFloor(D, gwb, artifact, n);

    // The deploy's unavoidable work on a host (copy 5 MB into the release dir, checksum it, switch the symlink),
    // measured locally; the same constant is added for both tools.
    const own = [];
    for (let k = 0; k < 5; k++) {
      const t = join(D, 'deploy-own');
      rmSync(t, { recursive: true, force: true });
      const t0 = performance.now();
      // --norc --noprofile and no BASH_ENV: this machine's own rc files (pyenv init, ~0.4 s) are not the deploy's work
      // (bash reads ~/.bashrc for `bash -c` when it thinks sshd started it).
      execFileSync('/bin/bash', ['--norc', '--noprofile', '-c', deployWork(artifact, t)], { env: { ...process.env, BASH_ENV: '', ENV: '' } });
      own.push((performance.now() - t0) / 1000);
    }
    const deployOwnS = median(own);
    log(`the deploy's own work, measured locally: ${own.map((x) => `${(x * 1000).toFixed(0)} ms`).join(', ')} (median ${(deployOwnS * 1000).toFixed(0)} ms)`);

    const runs = Object.fromEntries(tools.map((t) => [t, []]));
    const reset = () => {
      rmSync(join(D, 'hosts'), { recursive: true, force: true });
      rmSync(join(D, 'times.log'), { force: true });
      for (let i = 0; i < n; i++) mkdirSync(join(D, 'hosts', hname(i), 'app'), { recursive: true });
    };
    for (let rep = 1; rep <= REPS; rep++) {
      // rotate which tool goes first, so none always runs on a warmer machine
      const k = (rep - 1) % tools.length;
      const order = [...tools.slice(k), ...tools.slice(0, k)].filter((t) => !ONLY || t === ONLY);
      for (const tool of order) {
        reset();
        let r;
        let masters = 0;
        const hosts0 = await hostsCpuSeconds(fleet.pids);
        if (tool === 'graywave') {
          const state = join(D, `gw-state-${rep}`);
          r = await timed(
            process.execPath,
            [
              ...(process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : []),
              CLI,
              'run',
              playbook,
              '--yes',
              '--json',
              '--state-dir',
              state,
            ],
            { dir: D, cwd: D, env: process.env, fleetPids: fleet.pids },
          );
          if (process.env.BENCH_EVENTS) writeFileSync(`${process.env.BENCH_EVENTS}.${rep}`, r.stdout ?? '');
        } else if (tool === 'floor') {
          r = await timed('/bin/bash', ['--norc', '--noprofile', floor], { dir: D, cwd: D, env: { ...process.env, BASH_ENV: '' }, fleetPids: fleet.pids });
        } else {
          const dir = tool === 'mitogen' ? M : A;
          r = await timed('/usr/bin/ansible-playbook', ['-i', join(dir, 'inventory.ini'), join(dir, 'play.yml')], {
            dir: D,
            cwd: dir,
            env: { ...process.env, ANSIBLE_CONFIG: join(dir, 'ansible.cfg'), ANSIBLE_NOCOLOR: '1' },
            fleetPids: fleet.pids,
          });
          masters = sweepMasters(dir); // every run starts cold, as graywave's does
        }
        const hostsCpu = (await hostsCpuSeconds(fleet.pids)) - hosts0;
        const u = unavoidable(D, deployOwnS, n);
        const good = verifyFleet(D, n);
        const row = {
          rep,
          code: r.code,
          wall: r2(r.wall),
          cpu: r2(r.cpu),
          user: r2(r.user),
          sys: r2(r.sys),
          machineCpu: r2(r.machineCpu),
          hostsCpu: r2(hostsCpu),
          runCpu: r2(r.cpu + masters + hostsCpu),
          samplerCpu: r2(r.samplerCpu),
          maxRssMb: r1(r.maxRssMb),
          runRssMb: r1(r.runRssMb),
          runProcesses: r.runProcesses,
          unavoidable: r2(u.seconds),
          overhead: r2(r.wall - u.seconds),
          hostsOk: good,
          stepLines: u.lines,
        };
        runs[tool].push(row);
        log(`${tool} rep ${rep}: ${JSON.stringify(row)}`);
        if (r.code !== 0 || good !== n) log(`${tool} rep ${rep} did not complete cleanly:\n${(r.stdout ?? '').slice(-2000)}\n${(r.stderr ?? '').slice(-2000)}`);
        await sleep(1000);
      }
    }
    const logins = [];
    if (!real && !ONLY) for (let k = 0; k < REPS; k++) logins.push(await bareLogins(fleet, n));
    if (logins.length) log(`bare logins: ${JSON.stringify(logins)}`);
    const med = (tool, k) => r2(median(runs[tool].map((x) => x[k])));
    const summary = {};
    for (const tool of tools)
      summary[tool] = Object.fromEntries(
        ['wall', 'cpu', 'machineCpu', 'hostsCpu', 'runCpu', 'maxRssMb', 'runRssMb', 'runProcesses', 'unavoidable', 'overhead'].map((k) => [k, med(tool, k)]),
      );
    const ratio = (k, other = 'ansible') => r2(summary[other][k] / summary.graywave[k]);
    if (real) {
      return {
        hosts: n,
        rcSeconds: REAL_RC_SECONDS,
        sftp: false,
        waves: 4,
        stepsPerHost: 6,
        reps: REPS,
        deployOwnS: r2(deployOwnS),
        medians: summary,
        ansibleOverGraywave: {
          wall: ratio('wall'),
          cpu: ratio('cpu'),
          machineCpu: ratio('machineCpu'),
          runCpu: ratio('runCpu'),
          runRssMb: ratio('runRssMb'),
          overhead: ratio('overhead'),
        },
        mitogenOverGraywave: summary.mitogen
          ? {
              wall: ratio('wall', 'mitogen'),
              cpu: ratio('cpu', 'mitogen'),
              machineCpu: ratio('machineCpu', 'mitogen'),
              runCpu: ratio('runCpu', 'mitogen'),
              runRssMb: ratio('runRssMb', 'mitogen'),
              overhead: ratio('overhead', 'mitogen'),
            }
          : undefined,
        targets: {
          wallAtMostThirdOfAnsible: summary.graywave.wall <= summary.ansible.wall / 3,
          wallAtMostHalfOfMitogen: summary.mitogen ? summary.graywave.wall <= summary.mitogen.wall / 2 : undefined,
        },
        runs,
      };
    }
    return {
      hosts: n,
      waves: 4,
      stepsPerHost: 6,
      reps: REPS,
      deployOwnS: r2(deployOwnS),
      medians: summary,
      ansibleOverGraywave: {
        wall: ratio('wall'),
        cpu: ratio('cpu'),
        machineCpu: ratio('machineCpu'),
        runCpu: ratio('runCpu'),
        maxRssMb: ratio('maxRssMb'),
        runRssMb: ratio('runRssMb'),
        overhead: ratio('overhead'),
      },
      targets: {
        overheadAtMostTenth: summary.graywave.overhead <= summary.ansible.overhead / 10,
        wallAtMostThird: summary.graywave.wall <= summary.ansible.wall / 3,
        overheadAtMostOwnTime: summary.graywave.overhead <= summary.graywave.unavoidable,
      },
      // What graywave's run takes beyond the floor (the steps alone, no SSH): what the tool and SSH add here.
      overGraywaveFloor: summary.floor ? r2(summary.graywave.wall - summary.floor.wall) : undefined,
      // 40 × `ssh HOST true` (OpenSSH), 10 at a time: the connections alone, medians.
      bareLogins: logins.length ? { wall: r2(median(logins.map((x) => x.wall))), hostsCpu: r2(median(logins.map((x) => x.hostsCpu))) } : undefined,
      runs,
    };
  } finally {
    sweepMasters(join(D, 'ansible'));
    sweepMasters(join(D, 'mitogen'));
    await fleet.stop();
    if (process.env.BENCH_KEEP) log(`kept ${D} (BENCH_KEEP)`);
    else rmSync(D, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// scale: simulated fleet
// ---------------------------------------------------------------------------------------------------------------

function simOnce(hosts, stateDir) {
  const r = spawnSync(process.execPath, [join(BENCH, 'sim-one.mjs'), String(hosts), '20', '200', ...(stateDir ? [stateDir] : [])], {
    encoding: 'utf8',
    maxBuffer: 64 * 2 ** 20,
  });
  if (r.status !== 0) throw new Error(`simulated ${hosts} hosts failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

function cliTime(argv) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [CLI, ...argv], { encoding: 'utf8', maxBuffer: 256 * 2 ** 20 });
  return { s: (performance.now() - t0) / 1000, code: r.status, out: r.stdout, err: r.stderr };
}

async function benchScale() {
  const sizes = [1000, 10000];
  const out = { stepMs: 20, concurrency: 200, waveSize: '25%', reps: SCALE_REPS, sizes: {} };
  let last10k;
  for (const n of sizes) {
    const runs = [];
    for (let rep = 1; rep <= SCALE_REPS; rep++) {
      const r = simOnce(n);
      log(
        `simulated ${n} rep ${rep}: wall ${r.wallMs} ms, overhead ${r.overheadMs} ms, rss ${r.peakRssMb} MB, journal ${r.journalBytes} B, exit ${r.exitCode}, deployed ${r.fleet.deployed}, green ${r.fleet.green}`,
      );
      runs.push(r);
      if (n === 10000) {
        if (last10k) rmSync(dirname(last10k.playbook), { recursive: true, force: true });
        last10k = r;
      } else rmSync(dirname(r.playbook), { recursive: true, force: true });
    }
    const m = (k) => r1(median(runs.map((x) => x[k])));
    out.sizes[n] = {
      hosts: n,
      wallMs: m('wallMs'),
      configuredWaitMs: runs[0].configuredWaitMs,
      overheadMs: m('overheadMs'),
      overheadPerStepUs: m('overheadPerStepUs'),
      cpuMs: m('cpuMs'),
      peakRssMb: m('peakRssMb'),
      journalBytes: runs[0].journalBytes,
      journalRecords: runs[0].journalRecords,
      journalBytesPerStep: r1(runs[0].journalBytes / (n * 6)),
      allDeployedGreen: runs.every((x) => x.exitCode === 0 && x.fleet.deployed === n && x.fleet.green === n && x.fleet.drained === 0),
      runs: runs.map(({ playbook, stateDir, journal, ...rest }) => rest),
    };
  }
  out.overheadRatio1kTo10k = r2(out.sizes[10000].overheadMs / out.sizes[1000].overheadMs);
  out.perStepRatio1kTo10k = r2(out.sizes[10000].overheadPerStepUs / out.sizes[1000].overheadPerStepUs);
  // Overhead as fixed + marginal × host-steps, from the two sizes: the marginal cost is what grows with the fleet.
  out.marginalUsPerHostStep = r1(((out.sizes[10000].overheadMs - out.sizes[1000].overheadMs) * 1000) / ((10000 - 1000) * 6));
  out.fixedOverheadMs = Math.round(out.sizes[1000].overheadMs - (out.marginalUsPerHostStep * 1000 * 6) / 1000);

  // status and resume on the 10,000-host journal, through the CLI (process start included: what a person waits for)
  const { playbook, stateDir, journal } = last10k;
  const status = [];
  for (let k = 0; k < 3; k++) {
    const r = cliTime(['status', playbook, '--state-dir', stateDir, '--json']);
    if (r.code !== 0) throw new Error(`status failed: ${r.err}`);
    status.push(r.s);
  }
  // resume: the same journal with its final `done` replaced by a halt, so resume replays 120k records, finds every
  // host done, walks every wave and finishes the release.
  const original = readFileSync(journal, 'utf8');
  const lines = original.trimEnd().split('\n');
  const lastDone = lines.findLastIndex((l) => l.startsWith('{"type":"run"') && l.includes('"phase":"done"'));
  const halted =
    [
      ...lines.slice(0, lastDone),
      ...lines.slice(lastDone + 1),
      JSON.stringify({ type: 'run', t: new Date().toISOString(), phase: 'halted', reason: 'bench: halted to time resume' }),
    ].join('\n') + '\n';
  const resume = [];
  for (let k = 0; k < 3; k++) {
    writeFileSync(journal, halted);
    const r = cliTime(['resume', playbook, '--yes', '--json', '--state-dir', stateDir]);
    if (r.code !== 0) throw new Error(`resume failed (${r.code}): ${r.err}${r.out.slice(-1000)}`);
    resume.push(r.s);
  }
  const plan = cliTime(['--help']);
  out.cli10k = { statusS: r2(median(status)), resumeS: r2(median(resume)), cliStartS: r2(plan.s), journalBytes: original.length };
  out.targets = {
    overheadUnder30sAt10k: out.sizes[10000].overheadMs < 30_000,
    rssUnder300MbAt10k: out.sizes[10000].peakRssMb < 300,
    statusUnder2s: out.cli10k.statusS < 2,
    resumeUnder2s: out.cli10k.resumeS < 2,
  };
  rmSync(dirname(playbook), { recursive: true, force: true });
  return out;
}

// ---------------------------------------------------------------------------------------------------------------

function table(res) {
  const L = [];
  const m = res.machine;
  L.push(
    `Machine: ${m.nproc} × ${m.model}, ${m.memGb} GB, ${m.os}, Node ${m.node}, ${m.ansible}, ${m.openssh} — ${m.date}; load average before/after ${m.loadavg} / ${m.loadavgAfter} (a shared machine: other work was running)`,
  );
  if (res.ssh && !res.ssh.skipped) {
    const s = res.ssh;
    const g = s.medians.graywave;
    const a = s.medians.ansible;
    L.push('');
    L.push(
      `40 hosts over real sshd, 25% waves, 6 steps per host (5 MB upload), medians of ${s.reps} alternating runs each${s.from ? ` (run ${s.from})` : ''}:`,
    );
    L.push('');
    // The floor's column (the steps alone, see writeFloor) where the run had one.
    const f = s.medians.floor;
    const fc = (v) => (f ? ` ${v} |` : '');
    L.push(`| | graywave | ansible-playbook |${f ? ' the steps alone, no SSH, no tool (floor) |' : ''} ansible / graywave |`);
    L.push(`|---|---:|---:|${f ? '---:|' : ''}---:|`);
    L.push(`| wall time | ${g.wall} s | ${a.wall} s |${fc(`${f?.wall} s`)} ${s.ansibleOverGraywave.wall}× |`);
    L.push(`| CPU, user+sys of the process tree | ${g.cpu} s | ${a.cpu} s |${fc(`${f?.cpu} s`)} ${s.ansibleOverGraywave.cpu}× |`);
    L.push(
      `| CPU, whole machine (incl. sshd and remote side) | ${g.machineCpu} s | ${a.machineCpu} s |${fc(`${f?.machineCpu} s`)} ${s.ansibleOverGraywave.machineCpu}× |`,
    );
    if (g.runCpu !== undefined && a.runCpu !== undefined) {
      L.push(
        `| CPU of the run: the tool, its ssh processes and the hosts' side (sshd, shells, commands) | ${g.runCpu} s | ${a.runCpu} s |${fc('')} ${s.ansibleOverGraywave.runCpu}× |`,
      );
    }
    L.push(`| peak RSS (largest process) | ${g.maxRssMb} MB | ${a.maxRssMb} MB |${fc('')} ${s.ansibleOverGraywave.maxRssMb}× |`);
    if (g.runRssMb !== undefined && a.runRssMb !== undefined) {
      L.push(
        `| peak memory (PSS) of every process the run started, both ends (sampled every 100 ms) | ${g.runRssMb} MB (${g.runProcesses} processes) | ${a.runRssMb} MB (${a.runProcesses} processes) |${fc('')} ${s.ansibleOverGraywave.runRssMb}× |`,
      );
    }
    L.push(`| hosts' own step time (Σ waves, slowest host) | ${g.unavoidable} s | ${a.unavoidable} s |${fc(`${f?.unavoidable} s`)} |`);
    L.push(`| orchestration overhead (wall − own time) | ${g.overhead} s | ${a.overhead} s |${fc(`${f?.overhead} s`)} ${s.ansibleOverGraywave.overhead}× |`);
    L.push('');
    const own = s.targets.overheadAtMostOwnTime;
    L.push(
      `Targets: graywave overhead ≤ 1/10 of Ansible's: ${s.targets.overheadAtMostTenth ? 'met' : 'NOT met'}; wall ≤ 1/3: ${s.targets.wallAtMostThird ? 'met' : 'NOT met'}${own === undefined ? '' : `; overhead ≤ the hosts' own step time: ${own ? 'met' : 'NOT met'}`}.`,
    );
    if (f)
      L.push(
        '',
        `The floor column runs the same steps and deploy work with plain bash on this machine, a wave's 10 hosts in parallel, without SSH or any tool: ` +
          `on loopback the hosts share ${m.nproc} cores with each other and with the tool, so even this run takes ${f.overhead} s beyond the hosts' own step time. ` +
          `graywave's run takes ${s.overGraywaveFloor} s more than the floor: that is what graywave and SSH (40 connections, 200 MB encrypted) add here.` +
          (s.bareLogins
            ? ` The connections alone, 40 × OpenSSH's \`ssh HOST true\` 10 at a time, take ${s.bareLogins.wall} s and ${s.bareLogins.hostsCpu} s of the hosts' CPU (sshd, PAM, the login shell), ` +
              `at least ${r2(s.bareLogins.hostsCpu / m.nproc)} s of wall on ${m.nproc} cores, against the ${r2(f.unavoidable - f.overhead)} s above the floor that "overhead ≤ the hosts' own step time" leaves any SSH tool here.`
            : ''),
      );
  } else if (res.ssh?.skipped) L.push(`\nssh part skipped: ${res.ssh.skipped}`);
  if (res.real && !res.real.skipped) {
    const s = res.real;
    const cols = ['graywave', 'ansible', ...(s.medians.mitogen ? ['mitogen'] : [])];
    const head = { graywave: 'graywave', ansible: 'ansible-playbook', mitogen: 'ansible + Mitogen' };
    const row = (label, k, unit) =>
      `| ${label} | ${cols.map((c) => `${s.medians[c][k]}${unit}`).join(' | ')} | ${s.ansibleOverGraywave[k] ?? ''}${s.ansibleOverGraywave[k] ? '×' : ''} |${s.mitogenOverGraywave ? ` ${s.mitogenOverGraywave[k] ?? ''}${s.mitogenOverGraywave[k] ? '×' : ''} |` : ''}`;
    L.push('');
    L.push(
      `Hosts as they come: ${s.hosts} hosts whose login user's ~/.bashrc costs ${s.rcSeconds * 1000} ms, sshd without the SFTP subsystem; the same release, medians of ${s.reps} rotating runs each${s.from ? ` (run ${s.from})` : ''}:`,
    );
    L.push('');
    L.push(`| | ${cols.map((c) => head[c]).join(' | ')} | ansible / graywave |${s.mitogenOverGraywave ? ' Mitogen / graywave |' : ''}`);
    L.push(`|---|${cols.map(() => '---:').join('|')}|---:|${s.mitogenOverGraywave ? '---:|' : ''}`);
    L.push(row('wall time', 'wall', ' s'));
    L.push(row('CPU, user+sys of the process tree', 'cpu', ' s'));
    L.push(row('CPU, whole machine (incl. sshd and remote side)', 'machineCpu', ' s'));
    if (s.medians.graywave.runCpu !== undefined) L.push(row("CPU of the run: the tool, its ssh processes and the hosts' side", 'runCpu', ' s'));
    L.push(row('peak memory (PSS) of every process the run started', 'runRssMb', ' MB'));
    L.push(
      `| hosts' own step time (Σ waves, slowest host) | ${cols.map((c) => `${s.medians[c].unavoidable} s`).join(' | ')} | |${s.mitogenOverGraywave ? ' |' : ''}`,
    );
    L.push(row('orchestration overhead (wall − own time)', 'overhead', ' s'));
    L.push('');
    const t = s.targets;
    L.push(
      `Targets: graywave wall ≤ 1/3 of Ansible's: ${t.wallAtMostThirdOfAnsible ? 'met' : 'NOT met'}; ≤ 1/2 of Ansible + Mitogen's: ${t.wallAtMostHalfOfMitogen === undefined ? 'not measured' : t.wallAtMostHalfOfMitogen ? 'met' : 'NOT met'}.`,
    );
  } else if (res.real?.skipped) L.push(`\nrealistic part skipped: ${res.real.skipped}`);
  if (res.scale) {
    const c = res.scale;
    L.push('');
    L.push(
      `Simulated fleet (in-process hosts, real engine and fsync'd journal), 6 steps × ${c.stepMs} ms, 25% waves, concurrency ${c.concurrency}, medians of ${c.reps}${c.from ? ` (run ${c.from})` : ''}:`,
    );
    L.push('');
    L.push('| hosts | wall | configured step time | overhead | overhead per host-step | CPU | peak RSS | journal |');
    L.push('|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const n of Object.keys(c.sizes)) {
      const x = c.sizes[n];
      L.push(
        `| ${Number(n).toLocaleString('en')} | ${r2(x.wallMs / 1000)} s | ${r2(x.configuredWaitMs / 1000)} s | ${r2(x.overheadMs / 1000)} s | ${x.overheadPerStepUs} µs | ${r2(x.cpuMs / 1000)} s | ${x.peakRssMb} MB | ${r1(x.journalBytes / 2 ** 20)} MB (${x.journalBytesPerStep} B/step) |`,
      );
    }
    L.push('');
    L.push(
      `Overhead 1k → 10k: ${c.overheadRatio1kTo10k}× (linear ≈ 10×; per host-step ${c.perStepRatio1kTo10k}×): a fixed part of ≈${(c.fixedOverheadMs / 1000).toFixed(2)} s (process start, plan, lock, waves) plus ${c.marginalUsPerHostStep} µs per host-step, so it grows linearly with the fleet, with a small slope. On the 10,000-host journal: \`status\` ${c.cli10k.statusS} s, \`resume\` ${c.cli10k.resumeS} s (CLI start alone ${c.cli10k.cliStartS} s).`,
    );
    const t = c.targets;
    L.push(
      `Targets: overhead < 30 s ${t.overheadUnder30sAt10k ? 'met' : 'NOT met'}; RSS < 300 MB ${t.rssUnder300MbAt10k ? 'met' : 'NOT met'}; status < 2 s ${t.statusUnder2s ? 'met' : 'NOT met'}; resume < 2 s ${t.resumeUnder2s ? 'met' : 'NOT met'}.`,
    );
  }
  return L.join('\n');
}

// `node bench/run.mjs serve [real]`: only the fleet and its playbook, kept up until SIGINT/SIGTERM, for profiling
// single runs by hand (`graywave run PLAYBOOK --yes --json --state-dir DIR`; reset the hosts with `rm -rf DIR/hosts`).
if (parts.includes('serve')) {
  const real = parts.includes('real');
  const n = real ? REAL_HOSTS : HOSTS;
  const D = mkdtempSync('/tmp/gwb-');
  const fleet = await startFleet(D, real ? { n, rcSeconds: REAL_RC_SECONDS, sftp: false } : { n });
  const gwb = writeHostScript(D);
  const artifact = join(D, 'app-2.0.0.bin');
  writeFileSync(artifact, randomBytes(5 * 2 ** 20));
  for (let i = 0; i < n; i++) mkdirSync(join(D, 'hosts', hname(i), 'app'), { recursive: true });
  const playbook = writeGraywave(D, fleet, gwb, artifact, n);
  console.log(JSON.stringify({ dir: D, playbook, port: fleet.port, sshd: fleet.pids }));
  await new Promise((res) => ['SIGINT', 'SIGTERM'].forEach((s) => process.once(s, res)));
  await fleet.stop();
  rmSync(D, { recursive: true, force: true });
  process.exit(0);
}

const results = { machine: machine() };
process.on('exit', () => undefined);
const previous = existsSync(join(BENCH, 'results.json')) ? JSON.parse(readFileSync(join(BENCH, 'results.json'), 'utf8')) : {};
if (want('ssh')) results.ssh = await benchSsh();
else if (previous.ssh) results.ssh = { ...previous.ssh, from: previous.ssh.from ?? previous.machine?.date };
if (want('real')) results.real = await benchSsh(true);
else if (previous.real) results.real = { ...previous.real, from: previous.real.from ?? previous.machine?.date };
if (want('scale')) results.scale = await benchScale();
else if (previous.scale) results.scale = { ...previous.scale, from: previous.scale.from ?? previous.machine?.date };
results.machine.loadavgAfter = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const text = table(results);
if (ONLY) {
  // A one-sided run is for profiling: keep the published results as they are.
  console.log(text);
  process.exit(0);
}
writeFileSync(join(BENCH, 'results.json'), JSON.stringify(results, null, 2) + '\n');
writeFileSync(join(BENCH, 'RESULTS.md'), `<!-- written by \`npm run bench\` (bench/run.mjs); do not edit -->\n${text}\n`);
// The README's Performance section shows the same table, between these markers.
const readme = join(ROOT, 'README.md');
const BEGIN = '<!-- bench:begin (written by npm run bench) -->';
const END = '<!-- bench:end -->';
const doc = readFileSync(readme, 'utf8');
const a = doc.indexOf(BEGIN);
const b = doc.indexOf(END);
if (a >= 0 && b > a) writeFileSync(readme, `${doc.slice(0, a + BEGIN.length)}\n${text}\n${doc.slice(b)}`);
else log(`README.md has no ${BEGIN} … ${END} section: table not copied there`);
console.log(text);
