import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Host } from '../../src/playbook/types.js';
import { SshTransport, sshTransportOptions } from '../../src/transport/ssh.js';
import { Secrets } from '../../src/util/secrets.js';
import { hasSshd, loopbacks, RC_SECONDS, startSshFleet, type SshFleet } from './helpers/sshd.js';

const HOSTS = 40; // 127.0.0.2 … 127.0.0.41: three sshd instances (16 + 16 + 8 addresses)
const STEPS = 6;
const CONCURRENCY = 10;
const STEP_S = 0.2; // each step's own time

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

describe.skipIf(!hasSshd())(`ssh transport overhead: ${HOSTS} hosts x ${STEPS} steps, concurrency ${CONCURRENCY}`, () => {
  let fleet: SshFleet;
  beforeAll(async () => {
    fleet = await startSshFleet(loopbacks(2, HOSTS + 1));
  }, 30_000);
  afterAll(async () => {
    await fleet?.stop();
  });

  test('adds little over the steps own time', async () => {
    expect(fleet.servers).toHaveLength(3);
    const t = new SshTransport(
      sshTransportOptions.parse({ user: 'root', port: fleet.port, identityFile: fleet.clientKey, knownHostsFile: fleet.knownHosts, configFile: false }),
      { dir: fleet.dir, secrets: new Secrets(fleet.dir, {}) },
    );
    const hosts: Host[] = fleet.addresses.map((a, i) => ({ name: `h${i + 2}`, address: a, vars: {}, labels: {} }));
    const first: number[] = []; // first step of a host: includes the SSH handshake
    const warm: number[] = []; // later steps: the connection is reused
    const queue = [...hosts];
    const clientPorts = new Map<string, Set<string>>(); // per host: the client ports its steps' sessions came from
    const start = Date.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let h = queue.shift(); h; h = queue.shift()) {
          for (let s = 0; s < STEPS; s++) {
            const t0 = Date.now();
            const r = await t.exec(h, `sleep ${STEP_S}; echo "$SSH_CONNECTION"`);
            const overhead = Date.now() - t0 - STEP_S * 1000;
            expect(r.code).toBe(0);
            expect(r.stdout).toContain(` ${h.address} ${fleet.port}`);
            clientPorts.set(h.name, (clientPorts.get(h.name) ?? new Set()).add(r.stdout.split(' ')[1]!));
            (s === 0 ? first : warm).push(overhead);
          }
          await t.release(h);
        }
      }),
    );
    const wall = Date.now() - start;
    await t.close();
    const own = Math.round((HOSTS / CONCURRENCY) * STEPS * STEP_S * 1000);
    const figures = {
      wallMs: wall,
      ownMs: own,
      addedMs: wall - own,
      addedPct: Math.round(((wall - own) / own) * 100),
      medianFirstStepOverheadMs: median(first),
      medianWarmStepOverheadMs: median(warm),
    };
    console.log(`ssh perf ${JSON.stringify(figures)}`);
    // What keeps a warm step cheap, asserted as such: every step of a host came over its one connection.
    for (const h of hosts) expect([...(clientPorts.get(h.name) ?? [])], h.name).toHaveLength(1);
    // Generous bounds only (shared 2-core CI; the figures themselves are for `npm run bench`): a warm step costs tens
    // of ms, a handshake a few hundred, plus the host's login shell reading its rc file once (RC_SECONDS).
    expect(figures.medianWarmStepOverheadMs).toBeLessThan(1000);
    expect(figures.medianFirstStepOverheadMs).toBeLessThan(5000 + RC_SECONDS * 1000);
    expect(wall).toBeLessThan(own * 5);
  }, 50_000);
});
