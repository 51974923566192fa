import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from './helpers/process.js';

/**
 * `notify:` end to end through the built CLI: run → pause (approval) → approve → resume → halt → resume → done,
 * then resume and run again on the finished release. A local HTTP receiver records every POST.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = join(root, 'bin', 'graywave.js');

interface Received {
  path: string;
  body: Record<string, unknown>;
}
let server: Server;
let port: number;
const received: Received[] = [];
let dir: string;

function graywave(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: dir,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => (child.kill('SIGKILL'), fail(new Error(`graywave ${args.join(' ')} hung:\n${stdout}\n${stderr}`))), 30_000);
    child.on('close', (code) => (clearTimeout(timer), done({ code: code ?? -1, stdout, stderr })));
  });
}

beforeAll(async () => {
  if (!existsSync(join(root, 'dist/notify/notifier.js'))) throw new Error('dist is missing: run `npm run build` before this test (it spawns the built CLI)');
  dir = tempDir('notify');
  server = createServer((req, res) => {
    let data = '';
    req.setEncoding('utf8').on('data', (c: string) => (data += c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', body: JSON.parse(data) as Record<string, unknown> });
      if (req.url === '/broken') {
        res.writeHead(500).end('receiver is down');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  writeFileSync(
    join(dir, 'release.yaml'),
    `name: nt
version: "3.1.4"
hosts:
  - { name: h1, address: 127.0.0.1 }
  - { name: h2, address: 127.0.0.1 }
transport: { type: local }
waves: { size: 1, pause: approve }
steps:
  - name: deploy
    run: "test -f ok-{{host.name}} || test {{host.name}} = h1"
notify:
  - name: chat
    webhook: { url: { env: GW_TEST_CHAT_HOOK } }
    format: slack
    on: [started, wave-done, approval-needed, halted, rolled-back, done]
  - name: raw
    webhook: "http://127.0.0.1:${port}/json"
    on: [halted, done]
  - name: broken
    webhook: "http://127.0.0.1:${port}/broken"
    format: feishu
    severity: error
    on: [halted, done]
`,
  );
});
afterAll(async () => {
  await new Promise((r) => server?.close(r));
  if (dir) removeDir(dir);
});

describe('notify: webhooks', () => {
  it('sends one message per transition across pause, approve, halt and resumes; a failing receiver never fails the release', async () => {
    const env = { GW_TEST_CHAT_HOOK: `http://127.0.0.1:${port}/chat/T000/SECRETTOKEN` };
    const common = ['release.yaml', '--yes', '--plain'];
    const r1 = await graywave(['run', ...common], env);
    expect(r1.code, r1.stderr).toBe(4); // paused: wave 1 waits for approval
    expect((await graywave(['approve', 'release.yaml', '--yes'], env)).code).toBe(0);
    const r2 = await graywave(['resume', ...common], env);
    expect(r2.code, r2.stdout + r2.stderr).toBe(1); // h2 fails: halted
    expect(r2.stderr).toMatch(/warning: notify broken: halted not delivered: HTTP 500/);
    writeFileSync(join(dir, 'ok-h2'), '');
    const r3 = await graywave(['resume', ...common], env);
    expect(r3.code, r3.stdout + r3.stderr).toBe(0);
    // Re-reporting the finished release must not announce it again.
    expect((await graywave(['resume', ...common], env)).code).toBe(0);
    // `run` on a finished release refuses without --again (exit 2, issue #21) and announces nothing either.
    expect((await graywave(['run', ...common], env)).code).toBe(2);

    const chat = received.filter((m) => m.path.startsWith('/chat/')).map((m) => m.body.text as string);
    const firstLines = chat.map((t) => t.split('\n')[0]);
    expect(firstLines).toEqual([
      '▶ nt 3.1.4: release started: 2 host(s) in 2 wave(s)',
      expect.stringMatching(/^✔ nt 3\.1\.4: wave 1\/2 done in /),
      '⏸ nt 3.1.4: wave 1/2 is done and waits for approval',
      '▶ nt 3.1.4: release resumed: 2 host(s) in 2 wave(s)',
      expect.stringMatching(/^✔ nt 3\.1\.4: wave 2\/2 done in .* with 1 failed host\(s\)$/),
      '✖ nt 3.1.4: HALTED at wave 2/2',
      '▶ nt 3.1.4: release resumed: 2 host(s) in 2 wave(s)',
      expect.stringMatching(/^✔ nt 3\.1\.4: wave 2\/2 done in /),
      expect.stringMatching(/^✅ nt 3\.1\.4: release done: 2 host\(s\) in 2 wave\(s\)/),
    ]);
    const halted = chat.find((t) => t.includes('HALTED'))!;
    expect(halted).toMatch(/Reason: wave 2: 1 host\(s\) failed \(h2\)/);
    expect(halted).toMatch(/Hosts: h2/);
    expect(halted).not.toMatch(/https?:/);

    const raw = received.filter((m) => m.path === '/json').map((m) => m.body);
    expect(raw.map((b) => b.kind)).toEqual(['halted', 'done']);
    expect(raw[0]).toMatchObject({ event: 'run.halted', release: 'nt', version: '3.1.4', wave: 2, severity: 'error', hosts: ['h2'] });
    expect(String(raw[0]!.reason)).toMatch(/h2/);

    // severity: error keeps halted and drops done; Feishu's body shape.
    const broken = received.filter((m) => m.path === '/broken').map((m) => m.body);
    expect(broken).toHaveLength(1);
    expect(broken[0]).toMatchObject({ msg_type: 'text', content: { text: expect.stringContaining('HALTED') } });

    const log = readFileSync(join(dir, '.graywave', 'nt', 'logs', '_notify.log'), 'utf8');
    expect(log).toMatch(/broken: halted not delivered: HTTP 500/);
    expect(log).not.toContain('SECRETTOKEN');
    const journal = readFileSync(join(dir, '.graywave', 'nt', 'journal.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; ok?: boolean; channel?: string });
    const notes = journal.filter((r) => r.type === 'notify');
    expect(notes).toHaveLength(chat.length + raw.length + broken.length);
    expect(notes.filter((n) => !n.ok).map((n) => n.channel)).toEqual(['broken']);
    expect(JSON.stringify(journal)).not.toContain('SECRETTOKEN');
  }, 60_000);
});
