// Samples the memory of one benchmark run, both ends of it on this machine, every 100 ms: the processes descending
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
// The sampler must not slow the run it measures: sampling every 50 ms and re-reading every process's stat and command
// line each time cost it 3.7 s of CPU during a 25 s graywave run on 2 cores (about as much as graywave itself). Now a
// PID's membership is decided once (its parent chain and command line do not change in a way that matters here), and
// a process's PSS (smaps_rollup: the costly part, 1-30 ms for a large node process) is read when it is first seen and
// then at most every REREAD_MS; the sum is taken every 100 ms over the latest reading of every live process.
const REREAD_MS = 500;
// pid -> { inRun: descends from a root (or names the bench dir), counted: started after us, pss (kB), at (ms) }
const tree = new Map();

function decide(pid, depth = 0) {
  let d = tree.get(pid);
  if (d) return d;
  d = { inRun: false, counted: false };
  try {
    const f = stat(pid);
    const ppid = Number(f[1]);
    d.inRun = roots.has(pid) || (ppid > 1 && depth < 64 && decide(ppid, depth + 1).inRun);
    if (!d.inRun) d.inRun = readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(match);
    d.counted = d.inRun && pid !== self && !roots.has(pid) && Number(f[19]) >= since;
  } catch {
    /* gone meanwhile */
  }
  tree.set(pid, d);
  return d;
}

function sample() {
  let kb = 0;
  const now = Date.now();
  const alive = new Set();
  for (const p of readdirSync('/proc')) {
    const c = p.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const pid = Number(p);
    alive.add(pid);
    const d = decide(pid);
    if (!d.counted) continue;
    if (d.pss === undefined || now - d.at >= REREAD_MS) {
      try {
        d.pss = Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
        d.at = now;
        seen.add(pid);
      } catch {
        continue; /* gone meanwhile */
      }
    }
    kb += d.pss;
  }
  for (const pid of tree.keys()) if (!alive.has(pid)) tree.delete(pid); // a PID used again is decided again
  if (kb > peakKb) peakKb = kb;
}

const timer = setInterval(sample, 100);
sample();
process.stdout.write('ready\n'); // the caller starts the run only now
process.on('SIGTERM', () => {
  clearInterval(timer);
  sample();
  writeFileSync(out, JSON.stringify({ peakMb: Math.round((peakKb / 1024) * 10) / 10, processes: seen.size }) + '\n');
  process.exit(0);
});
