import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, requireBinary, tempDir } from './helpers/process.js';

/**
 * `graywave report` and `graywave log` on a real release (built CLI, local transport, an HTTP monitor on loopback
 * for the drain waits and a compare gate), halted once and resumed; the HTML is rendered by headless Chromium.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = join(root, 'bin', 'graywave.js');
const CHROMIUM = '/usr/bin/chromium';
const hasChromium = requireBinary(CHROMIUM, 'apt-get install -y --no-install-recommends chromium (scripts/setup-test-env.sh)');

let server: Server;
let dir: string;
const inflight = new Map<string, number>();

function run(cmd: string, args: string[], cwd: string, timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => (child.kill('SIGKILL'), fail(new Error(`${cmd} ${args.join(' ')} hung:\n${stdout}\n${stderr}`))), timeoutMs);
    child.on('close', (code) => (clearTimeout(timer), done({ code: code ?? -1, stdout, stderr })));
  });
}
const graywave = (args: string[]) => run(process.execPath, [bin, ...args], dir);

beforeAll(async () => {
  if (!existsSync(join(root, 'dist/report/html.js'))) throw new Error('dist is missing: run `npm run build` before this test (it spawns the built CLI)');
  dir = tempDir('report');
  server = createServer((req, res) => {
    const m = /^\/drain\/([\w.-]+)$/.exec(req.url ?? '');
    if (m) {
      // Each host's in-flight requests fall 3, 2, 1, 0, 0 …
      const left = inflight.get(m[1]!) ?? 3;
      inflight.set(m[1]!, Math.max(0, left - 1));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ inflight: left }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ green: 1.25, blue: 1 }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  writeFileSync(
    join(dir, 'shop.yaml'),
    `name: shop
version: "7.0.1"
hosts:
  - { name: web-1, address: 127.0.0.1 }
  - { name: web-2, address: 127.0.0.1 }
  - { name: web-3, address: 127.0.0.1 }
transport: { type: local }
waves: { size: 1 }
providers:
  traffic: { type: http, url: "http://127.0.0.1:${port}/drain/{{host.name}}", jsonPath: "$.inflight" }
  errors: { type: http, url: "http://127.0.0.1:${port}/errors", jsonPath: "$.green" }
steps:
  - name: drain
    run: "true"
  - waitDrained: { monitor: traffic, below: 0, stableFor: 2, interval: 50ms, timeout: 20s }
  - name: deploy
    run: "test {{host.name}} != web-3 || test -f fixed"
verify:
  - compare: { monitor: errors, metric: "error rate <b>", green: "$.green", blue: "$.blue", maxRatio: 2 }
`,
  );
});
afterAll(async () => {
  await new Promise((r) => server?.close(r));
  if (dir) removeDir(dir);
});

describe('graywave report and log', () => {
  it('reports every wave, gate values, drain polls, the failure and the operator actions; Chromium renders the HTML', async () => {
    const r1 = await graywave(['run', 'shop.yaml', '--yes', '--plain', '--reason', 'ticket OPS-7', '--skip-preflight']);
    expect(r1.code, r1.stdout + r1.stderr).toBe(1); // web-3 fails in wave 3
    writeFileSync(join(dir, 'fixed'), '');
    const r2 = await graywave(['resume', 'shop.yaml', '--yes', '--plain', '--skip-preflight']);
    expect(r2.code, r2.stdout + r2.stderr).toBe(0);

    const rep = await graywave(['report', 'shop.yaml', '--html', 'report.html']);
    expect(rep.code, rep.stderr).toBe(0);
    const md = rep.stdout;
    expect(md).toMatch(/^# Release shop 7\.0\.1/);
    expect(md).toContain('Status: **done**');
    for (const w of [1, 2, 3]) expect(md).toMatch(new RegExp(`\\| ${w} \\| done \\|`));
    // Gates with their measured values.
    expect(md).toMatch(/compare:error rate <b>.*\| ok \|.*green=1\.25, blue=1/);
    // Drain waits with the polled values, per host, from the host logs.
    expect(md).toMatch(/wave 1 \*\*web-1\*\* waitDrained:traffic: done .* last value 0 after 5 poll\(s\)/);
    expect(md).toMatch(/ {2}- .* value 3 \(0\/2 polls <= 0\)/);
    // The failure and the actions.
    expect(md).toMatch(/## Failures[\s\S]*web-3 deploy[\s\S]*command failed/);
    expect(md).toMatch(/## Operator actions[\s\S]*\| run \|[\s\S]*\| resume \|/);

    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)/); // self-contained: no scripts, no external assets
    expect(html).toContain('error rate &lt;b&gt;');

    const log = await graywave(['log', 'shop.yaml']);
    expect(log.code).toBe(0);
    const lines = log.stdout.trim().split('\n');
    expect(lines.filter((l) => /^\S+ \S+ {2}run /.test(l))).toHaveLength(1);
    expect(lines.filter((l) => /^\S+ \S+ {2}resume /.test(l))).toHaveLength(1);
    expect(log.stdout).toMatch(/→ halted .*wave 3/);
    expect(log.stdout).toMatch(/ run +\S+@\S+ pid \d+ .*reason: ticket OPS-7/);
    const json = (await graywave(['log', 'shop.yaml', '--json', '--actions-only'])).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { action: string; user?: string; pid?: number });
    expect(json.map((e) => e.action)).toEqual(['create', 'run', 'resume']);
    expect(json.every((e) => typeof e.user === 'string' && typeof e.pid === 'number')).toBe(true);

    if (!hasChromium) return;
    const profile = mkdtempSync(join(tmpdir(), 'gw-chromium-'));
    try {
      const flags = [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${profile}`,
        '--enable-logging=stderr',
        '--v=0',
      ];
      const url = pathToFileURL(join(dir, 'report.html')).href;
      const dom = await run(CHROMIUM, [...flags, '--dump-dom', url], dir, 60_000);
      expect(dom.code, dom.stderr).toBe(0);
      for (const w of [1, 2, 3]) {
        expect(dom.stdout).toContain(`data-wave="${w}"`);
        expect(dom.stdout).toContain(`Wave ${w} · done`);
      }
      for (const h of ['web-1', 'web-2', 'web-3']) expect(dom.stdout).toContain(`data-host="${h}"`);
      expect(dom.stderr).not.toMatch(/Uncaught|CONSOLE\(\d+\).*(Error|Refused)|Content Security Policy/);
      const shot = await run(CHROMIUM, [...flags, '--window-size=1100,1400', `--screenshot=${join(dir, 'report.png')}`, url], dir, 60_000);
      expect(shot.code, shot.stderr).toBe(0);
      expect(readFileSync(join(dir, 'report.png')).subarray(1, 4).toString()).toBe('PNG');
    } finally {
      removeDir(profile);
    }
  }, 90_000);
});
