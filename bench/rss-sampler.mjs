// Samples the memory of one benchmark run, both ends of it on this machine, every 50 ms: the processes descending
// from the given root PIDs (the bench itself, whose child is the timed tool, and the fleet's sshd listeners, whose
// children are the sessions and the commands on the "hosts"), plus any process whose command line mentions the
// bench directory (Ansible's ControlPersist masters detach from their parent). Only processes started after the
// sampler count. On SIGTERM it writes the peak sum of their PSS (MB: each shared page divided among the processes
// sharing it, so that forty sshd and bash processes are not each charged the whole libc) and how many processes it
// saw, then exits.
// Usage: node bench/rss-sampler.mjs OUT_FILE ROOT_PIDS(comma-separated) MATCH
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';

const [out, rootsArg = '', match = '\0'] = process.argv.slice(2);
const roots = new Set(rootsArg.split(',').filter(Boolean).map(Number));
const self = process.pid;
const stat = (pid) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
const since = Number(stat(self)[19]); // field 22: start time in clock ticks since boot
let peakKb = 0;
const seen = new Set();

function sample() {
  const procs = new Map(); // pid -> { ppid, start }
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const f = stat(p);
      procs.set(Number(p), { ppid: Number(f[1]), start: Number(f[19]) });
    } catch {
      /* gone meanwhile */
    }
  }
  const inRun = (pid) => {
    for (let q = pid, hops = 0; q > 1 && hops < 64; hops++) {
      if (roots.has(q)) return true;
      q = procs.get(q)?.ppid ?? 0;
    }
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(match);
    } catch {
      return false;
    }
  };
  let kb = 0;
  for (const [pid, p] of procs) {
    if (pid === self || roots.has(pid) || p.start < since || !inRun(pid)) continue;
    try {
      kb += Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
      seen.add(pid);
    } catch {
      /* gone meanwhile */
    }
  }
  if (kb > peakKb) peakKb = kb;
}

const timer = setInterval(sample, 50);
sample();
process.stdout.write('ready\n'); // the caller starts the run only now
process.on('SIGTERM', () => {
  clearInterval(timer);
  sample();
  writeFileSync(out, JSON.stringify({ peakMb: Math.round((peakKb / 1024) * 10) / 10, processes: seen.size }) + '\n');
  process.exit(0);
});
