import { readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, expect, test } from 'vitest';
import type { EngineEvent } from '../../src/engine/events.js';
import { releaseStatus } from '../../src/app/status.js';
import { runSimulated, SIM_STEPS } from '../../src/sandbox/sim/run.js';

describe('bench smoke: simulated fleet through the real engine', () => {
  test('8 simulated hosts: every host deployed and GREEN, one started+done pair per step in the journal', async () => {
    const events: EngineEvent[] = [];
    const r = await runSimulated({ hosts: 8, stepMs: 5, concurrency: 200, onEvent: (e) => events.push(e) });
    try {
      expect(r.exitCode).toBe(0);
      expect(r.waves).toBe(4); // 25% of 8 = 2 hosts per wave
      expect(r.fleet).toEqual({ deployed: 8, green: 8, drained: 0, stopped: 0 });
      // run steps have no check: each step is journalled as `started` then `done`
      expect(r.stepRecords).toBe(8 * SIM_STEPS.length * 2);
      const steps = readFileSync(r.journal, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .filter((x) => x.type === 'step');
      for (const name of SIM_STEPS) expect(steps.filter((s) => s.step === name && s.phase === 'done')).toHaveLength(8);
      expect(events.filter((e) => e.event === 'host.done')).toHaveLength(8);
      expect(events.at(-1)?.event).toBe('run.done');
      expect(r.configuredWaitMs).toBe(4 * 6 * 5);
      expect(r.overheadMs).toBeCloseTo(r.wallMs - r.configuredWaitMs, 0);
      const status = await releaseStatus(r.playbook, r.stateDir);
      expect(status.status).toBe('done');
      expect(status.waves.flatMap((w) => w.hosts).every((h) => h.status === 'done')).toBe(true);
    } finally {
      rmSync(dirname(r.playbook), { recursive: true, force: true });
    }
  }, 20_000);

  test('an injected deploy failure halts the wave and leaves the host drained-stopped, the rest untouched', async () => {
    const r = await runSimulated({ hosts: 8, stepMs: 2, failDeploy: ['h03'] });
    try {
      expect(r.exitCode).not.toBe(0);
      // waves: [h01 h02] done, [h03 h04]: h03 fails at deploy; the later waves never start
      expect(r.fleet.deployed).toBe(3);
      expect(r.fleet.stopped).toBe(1);
    } finally {
      rmSync(dirname(r.playbook), { recursive: true, force: true });
    }
  }, 20_000);
});
