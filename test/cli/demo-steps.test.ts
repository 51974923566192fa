import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { sandboxMain } from '../../src/cli/demo-steps.js';
import { BIN, ensureBuilt, ROOT, tempDirs } from '../helpers/cli.js';

/**
 * bin/graywave.js takes `graywave sandbox …` (what the demo playbooks' steps run per host) through its small entry,
 * src/cli/demo-steps.ts, without loading the whole CLI. Which modules a run loaded is read with a module hook
 * (node:module register), so "small" is checked, not timed; and the answers must be the whole CLI's.
 */
const temp = tempDirs('gw-steps-');
let dir: string;
let hook: string;

beforeAll(() => {
  ensureBuilt(['cli/demo-steps.ts', 'cli/failure.ts', 'cli/main.ts', 'cli/sandbox.ts', 'sandbox/supervisor.ts', 'sandbox/http.ts']);
  dir = temp();
  writeFileSync(
    join(dir, 'hooks.mjs'),
    "import { appendFileSync } from 'node:fs';\nexport async function load(url, context, next) {\n  if (url.startsWith('file:')) appendFileSync(process.env.GW_LOADED, url + '\\n');\n  return next(url, context);\n}\n",
  );
  hook = join(dir, 'register.mjs');
  writeFileSync(hook, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});\n`);
}, 120_000);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  loaded: string[];
}

let runs = 0;
/**
 * `graywave ARGS` in the temp dir; with `whole`, main() of the whole CLI instead of bin/graywave.js; with `watch`,
 * the modules it loaded are logged (the hook slows loading down: only where they are looked at).
 */
function run(args: string[], o: { whole?: boolean; watch?: boolean; env?: Record<string, string> } = {}): Promise<Run> {
  const log = join(dir, `loaded-${++runs}.txt`);
  writeFileSync(log, '');
  const whole = `import ${JSON.stringify(pathToFileURL(join(ROOT, 'dist/cli/color-env.js')).href)};
const { main } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'dist/cli/main.js')).href)});
process.exitCode = await main([process.argv[0], 'graywave', ...process.argv.slice(1)]);
setTimeout(() => process.exit(process.exitCode), 50);`;
  const argv = [...(o.watch ? ['--import', hook] : []), ...(o.whole ? ['--input-type=module', '-e', whole] : [BIN]), ...args];
  return new Promise((done) => {
    const child = spawn(process.execPath, argv, {
      cwd: dir,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', GW_LOADED: log, GRAYWAVE_SANDBOX_DIR: join(dir, 'no-sandbox'), ...o.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('close', (code) => done({ code, stdout, stderr, loaded: readFileSync(log, 'utf8').split('\n').filter(Boolean) }));
  });
}

const wholeCli = (loaded: string[]) => loaded.some((u) => u.endsWith('/dist/cli/main.js'));

describe('graywave sandbox … through the small entry', () => {
  it('the step commands load the sandbox commands only: no engine, renderers, playbook loader, YAML or schema library', async () => {
    for (const args of [
      ['sandbox', 'deploy', 'h01', '2.0.0', '--group', 'GREEN'],
      ['sandbox', 'switch', 'GREEN'],
      ['sandbox', 'probe', '--group', 'GREEN', '--count', '3', '--version', '2.0.0'],
    ]) {
      const r = await run(args, { watch: true });
      expect(
        r.loaded.some((u) => u.endsWith('/dist/cli/sandbox.js')),
        args.join(' '),
      ).toBe(true);
      expect(
        r.loaded.filter((u) => /\/dist\/(cli\/main|engine\/|render\/|playbook\/)|node_modules\/(listr2|yaml|zod)\//.test(u)),
        args.join(' '),
      ).toEqual([]);
    }
  }, 60_000);

  it('help, --set, --verbose, colour flags and unknown subcommands go to the whole CLI', async () => {
    // The choice, in process (sandboxMain steps aside before running anything) …
    for (const args of [
      ['sandbox', 'deploy', '--help'],
      ['sandbox', 'switch', 'GREEN', '-h'],
      ['sandbox', 'switch', 'GREEN', '--verbose'],
      ['sandbox', 'status', '--no-color'],
      ['sandbox', 'status', '--set', 'version=2'],
      ['sandbox', 'nope'],
      ['sandbox'],
      ['run', 'x.yaml'],
    ]) {
      expect(await sandboxMain(['node', 'graywave', ...args]), args.join(' ')).toBeUndefined();
    }
    // … and bin/graywave.js then runs the whole CLI.
    expect(wholeCli((await run(['sandbox', 'deploy', '--help'], { watch: true })).loaded)).toBe(true);
  }, 60_000);

  it('answers as the whole CLI does: the same output, errors and exit codes', async () => {
    for (const args of [
      ['sandbox', 'deploy', 'h01', '2.0.0'],
      ['sandbox', 'probe', '--count', 'x'],
      ['sandbox', 'status', '--json'],
    ]) {
      const [fast, whole] = await Promise.all([run(args), run(args, { whole: true })]);
      expect({ code: fast.code, stdout: fast.stdout, stderr: fast.stderr }, args.join(' ')).toEqual({
        code: whole.code,
        stdout: whole.stdout,
        stderr: whole.stderr,
      });
    }
  }, 60_000);

  it('a step leaves no connection open behind it (Connection: close), so nothing holds its process after the work', async () => {
    const seen: { path?: string; connection?: string }[] = [];
    const hub = http.createServer((req, res) => {
      seen.push({ path: req.url, connection: req.headers.connection });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ defaultGroup: 'GREEN' }));
    });
    hub.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => hub.listen(0, '127.0.0.1', r));
    try {
      const sb = join(dir, 'fake-sandbox');
      mkdirSync(sb, { recursive: true });
      writeFileSync(
        join(sb, 'sandbox.json'),
        JSON.stringify({ net: '127.0.0', hubAddress: '127.0.0.1', routerPort: (hub.address() as AddressInfo).port, hosts: [] }),
      );
      const r = await run(['sandbox', 'switch', 'GREEN'], { env: { GRAYWAVE_SANDBOX_DIR: sb } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('router: public traffic now goes to group GREEN\n');
      expect(seen).toEqual([{ path: '/_sandbox/switch?group=GREEN', connection: 'close' }]);
    } finally {
      hub.closeAllConnections();
      await new Promise((r) => hub.close(r));
    }
  }, 30_000);
});
