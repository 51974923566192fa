// One simulated release in a fresh process (so that its peak RSS is its own): prints the result as JSON.
// usage: node bench/sim-one.mjs HOSTS [STEP_MS] [CONCURRENCY] [STATE_DIR]
import { setMaxListeners } from 'node:events';
import { runSimulated } from '../dist/sandbox/sim/run.js';

const [hosts, stepMs = '20', concurrency = '200', stateDir] = process.argv.slice(2);
const ctl = new AbortController();
setMaxListeners(0, ctl.signal); // one abort listener per step in flight: 200 at once is expected, not a leak
const r = await runSimulated({
  hosts: Number(hosts),
  stepMs: Number(stepMs),
  concurrency: Number(concurrency),
  stateDir,
  output: 'silent',
  signal: ctl.signal,
});
process.stdout.write(JSON.stringify(r) + '\n');
