import { z } from 'zod';
import type { Gate } from './types.js';

/** `- name: smoke\n  run: "curl -fsS …"`: passes when the command exits 0. */
export const runGate: Gate<{ run: string }> = {
  doc: {
    options: { run: 'Shell command that must exit 0; with {{host.*}} it runs on each host of the wave.' },
    summary: 'A shell command that must exit 0. With {{host.*}} in it, it runs once per host of the wave, on that host; otherwise once, on this machine.',
    checkedAgainst: 'bash 5.2 on this machine and over real OpenSSH 9.2 (Debian 12)',
    example: '- name: smoke\n  run: "curl -fsS http://{{host.address}}:8080/health"',
  },
  key: 'run',
  stepLevel: true,
  params: z.object({ run: z.string().min(1) }).strict(),
  defaultName: () => 'run',
  describe: (p) => p.run,
  async run(ctx, p) {
    const res = await ctx.sh(ctx.renderShell(p.run));
    const tail = (res.stderr || res.stdout).trim().split('\n').slice(-3).join(' | ');
    if (res.code === 0) return { ok: true, observed: 'exit 0' };
    const why = res.timedOut ? 'timed out' : res.code === null ? `killed by ${res.signal}` : `exit ${res.code}`;
    return { ok: false, observed: tail ? `${why}: ${tail}` : why };
  },
};
