import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');

describe('bench smoke: bench/judge.mjs', () => {
  test('a short run prints the table (every case, the judge and compare columns) and leaves the README alone', () => {
    if (!existsSync(join(ROOT, 'dist/gates/judge.js'))) throw new Error('dist is missing: run `npm run build` first');
    const before = readFileSync(join(ROOT, 'README.md'), 'utf8');
    let out: string;
    try {
      out = execFileSync(process.execPath, ['bench/judge.mjs', '--runs', '20', '--no-readme'], {
        cwd: ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 60_000,
      });
    } catch (err) {
      out = String((err as { stdout?: string }).stdout ?? ''); // 20 runs may miss a goal: exit 1, same table
    }
    for (const label of ['identical versions', '+20% p99 shift', '3x error rate (0.5% baseline)', 'same median, 3x spread', 'sparse data (< minSamples)']) {
      expect(out).toMatch(
        new RegExp(
          `\\| ${label.replace(/[()+<.]/g, '\\$&')} \\| (fail|inconclusive) \\| [\\d.]+% \\(pass \\d+, marginal \\d+, fail \\d+, inconclusive \\d+\\)`,
        ),
      );
    }
    expect(out).toContain('| sparse data (< minSamples) | inconclusive | 100% (pass 0, marginal 0, fail 0, inconclusive 20) | 100% | yes |');
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8')).toBe(before);
  }, 90_000);
});
