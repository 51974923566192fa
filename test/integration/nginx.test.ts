import { readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError } from '../../src/errors.js';
import { nginxProvider } from '../../src/providers/lb/nginx.js';
import type { Provider } from '../../src/providers/types.js';
import { LocalTransport } from '../../src/transport/local.js';
import type { Transport } from '../../src/transport/types.js';
import { makeContext, makeEnv, makeHost } from '../helpers/contexts.js';
import { hasNginx, loadLoop, startBackend, startNginx, type Backend, type NginxServer } from './helpers/nginx.js';
import { waitFor } from '../helpers/wait.js';
import { removeDir, tempDir } from './helpers/process.js';

const has = hasNginx();

function create(options: Record<string, unknown>, env = makeEnv()): Provider {
  return nginxProvider.create(nginxProvider.options.parse(options), env) as Provider;
}

/** Paces a background loop (not a wait: the tests wait on conditions with waitFor). */
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!has)('nginx provider against a real nginx under load', () => {
  let nginx: NginxServer;
  let backends: Backend[];
  let original: string;

  beforeAll(async () => {
    backends = [await startBackend('b1', 20), await startBackend('b2', 20), await startBackend('b3', 20)];
    nginx = await startNginx(
      `    upstream order_backend {\n` +
        `        server ${backends[0]!.address} weight=2 max_fails=0;   # app-01\n` +
        `        server ${backends[1]!.address} max_fails=0;\n` +
        `        server ${backends[2]!.address} max_fails=0;\n` +
        `    }\n` +
        `    server {\n        listen 127.0.0.1:{{PORT}};\n        location / { proxy_pass http://order_backend; }\n    }\n`,
    );
    original = readFileSync(nginx.conf, 'utf8');
  });

  afterAll(async () => {
    await nginx?.stop();
    for (const b of backends ?? []) await b.close();
  });

  it('drains, reloads and restores a backend with zero failed requests; the drained backend gets nothing after the reload', async () => {
    const env = makeEnv({ dir: nginx.dir });
    const provider = create({ config: nginx.conf, upstream: 'order_backend', server: '{{host.address}}', test: nginx.test, reload: nginx.reload }, env);
    const ctx = makeContext({ host: makeHost('app-01', backends[0]!.address) });
    const load = loadLoop(`http://127.0.0.1:${nginx.port}/`, 6);
    await waitFor(() => backends[0]!.count > 10, 'the load to reach app-01');

    const saved = await provider.drain(ctx);
    expect(saved).toEqual({ config: nginx.conf, upstream: 'order_backend', server: backends[0]!.address, added: ['local'], weights: { local: 2 } });
    expect(JSON.parse(JSON.stringify(saved))).toEqual(saved);
    expect(readFileSync(nginx.conf, 'utf8')).toBe(original.replace('max_fails=0;   # app-01', 'max_fails=0 down;   # app-01'));
    // the backup of the previous file sits beside it under a dot-name (out of include globs)
    expect(readFileSync(join(nginx.dir, '.nginx.conf.graywave-bak'), 'utf8')).toBe(original);

    const check = await waitFor(
      async () => {
        const c = await provider.isDrained(ctx);
        return c.done && c;
      },
      'isDrained to say done',
      { timeoutMs: 15_000 },
    );
    expect(check).toMatchObject({ done: true });
    // once old workers are gone, no request reaches the drained backend while the others keep serving (a window of
    // traffic, measured in requests rather than time)
    const atDrain = backends[0]!.count;
    const othersAtDrain = backends[1]!.count + backends[2]!.count;
    await waitFor(() => backends[1]!.count + backends[2]!.count > othersAtDrain + 40, '40 more requests on the other backends');
    expect(backends[0]!.count).toBe(atDrain);

    // idempotent: a repeated drain changes nothing and still says it added the line (from ctx.previous)
    const again = await provider.drain(makeContext({ host: ctx.host, previous: saved }));
    expect(again).toEqual(saved);

    // Read-back: still down, then a warm-up step (half the drain-time weight=2, not down), then the full restore.
    expect(await provider.isRestored!(ctx, saved)).toMatchObject({
      done: false,
      observed: expect.stringMatching(/is still down in upstream order_backend on local/),
    });
    await provider.setWeight!(ctx, saved, 50);
    expect(readFileSync(nginx.conf, 'utf8')).toBe(original.replace('weight=2 max_fails=0;', 'weight=1 max_fails=0;'));
    expect(await provider.isRestored!(ctx, saved)).toMatchObject({
      done: false,
      observed: expect.stringMatching(/has weight 1 in upstream order_backend on local \(want 2\)/),
    });

    await provider.restore(ctx, saved);
    expect(readFileSync(nginx.conf, 'utf8')).toBe(original);
    expect(await provider.isRestored!(ctx, saved)).toMatchObject({ done: true });
    await waitFor(() => backends[0]!.count > atDrain + 10, 'app-01 to get requests again after the restore');
    await provider.restore(ctx, saved); // repeated restore: no change, no error
    expect(readFileSync(nginx.conf, 'utf8')).toBe(original);

    const { ok, failed } = await load.stop();
    expect(failed).toEqual([]);
    expect(ok).toBeGreaterThan(60); // at least the requests waited for above: the load ran the whole time
    expect(await provider.isDrained(ctx)).toMatchObject({ done: false, observed: expect.stringMatching(/is not down in upstream order_backend on local/) });
  });

  it('leaves a line that was already down before the drain down on restore', async () => {
    writeFileSync(nginx.conf, original.replace(`server ${backends[2]!.address} max_fails=0;`, `server ${backends[2]!.address} max_fails=0 down;`));
    try {
      const provider = create({ config: nginx.conf, upstream: 'order_backend', server: backends[2]!.address, test: nginx.test, reload: nginx.reload });
      const ctx = makeContext();
      const saved = await provider.drain(ctx);
      expect(saved).toMatchObject({ added: [] });
      await provider.restore(ctx, saved);
      expect(readFileSync(nginx.conf, 'utf8')).toContain(`${backends[2]!.address} max_fails=0 down;`);
    } finally {
      writeFileSync(nginx.conf, original);
    }
  });

  it("puts the backup back and fails with nginx's message when test rejects the edited file", async () => {
    // a server line nginx cannot accept once `down` is added: `down` twice is fine, so use a test wrapper
    // that runs the real `nginx -t` and then rejects any file containing `down` (stands in for a site rule)
    const test = `${nginx.test} && ! grep -q ' down;' ${nginx.conf} || { echo "nginx: [emerg] rejected by site policy" >&2; exit 1; }`;
    const provider = create({ config: nginx.conf, upstream: 'order_backend', server: backends[1]!.address, test, reload: nginx.reload });
    const err = await provider.drain(makeContext()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).retryable).toBe(false);
    expect((err as Error).message).toMatch(
      /nginx on local .*failed after marking .* down in upstream order_backend .*rejected by site policy.*the previous file was put back/,
    );
    expect(readFileSync(nginx.conf, 'utf8')).toBe(original);
    expect(readdirSync(nginx.dir).filter((f) => f.includes('graywave-tmp'))).toEqual([]);
  });
  it('fails and puts the file back when nginx keeps its old workers (reload not applied by the master), even while another nginx on the host reloads', async () => {
    // A second nginx on the same host, reloading all the time: its new workers must not pass for ours.
    const other = await startNginx(`    server {\n        listen 127.0.0.1:{{PORT}};\n        return 204;\n    }\n`);
    let reloading = true;
    const reloads = (async () => {
      const local = new LocalTransport(other.dir);
      while (reloading) {
        await local.exec(makeHost('local'), other.reload);
        await pause(60);
      }
    })();
    try {
      // `reload: true` sends no signal: stands in for a master that rejects the new config after `test` passed
      const provider = create({
        config: nginx.conf,
        upstream: 'order_backend',
        server: backends[1]!.address,
        test: nginx.test,
        reload: 'true',
        timeout: '700ms',
      });
      await expect(provider.drain(makeContext())).rejects.toThrow(
        /no nginx master replaced its workers within 700 ms, so the new config is not running; the previous file was put back/,
      );
      expect(readFileSync(nginx.conf, 'utf8')).toBe(original);
    } finally {
      reloading = false;
      await reloads;
      await other.stop();
    }
  });
});

describe('nginx provider edit logic (fake test/reload commands, no nginx needed)', () => {
  const conf = (addrs: string[]) => `upstream app {\n${addrs.map((a) => `    server ${a};\n`).join('')}}\n`;

  it('serializes concurrent drains of several hosts on the same file (no lost update)', async () => {
    const dir = tempDir('nginx-logic');
    try {
      const file = join(dir, 'app.conf');
      const addrs = ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80', '10.0.0.4:80'];
      writeFileSync(file, conf(addrs));
      const provider = create(
        { config: 'app.conf', upstream: 'app', server: '{{host.address}}:80', test: 'sleep 0.02', reload: 'true', checkWorkers: false },
        makeEnv({ dir }),
      );
      await Promise.all(addrs.map((a, i) => provider.drain(makeContext({ host: makeHost(`h${i}`, a.split(':')[0]) }))));
      expect(readFileSync(file, 'utf8')).toBe(conf(addrs.map((a) => `${a} down`)));
    } finally {
      removeDir(dir);
    }
  });

  it('refuses to touch a config that already fails test', async () => {
    const dir = tempDir('nginx-logic');
    try {
      const file = join(dir, 'app.conf');
      writeFileSync(file, conf(['10.0.0.1:80']));
      const provider = create(
        {
          config: file,
          upstream: 'app',
          server: '10.0.0.1:80',
          test: 'echo "nginx: [emerg] unknown directive" >&2; exit 1',
          reload: 'true',
          checkWorkers: false,
        },
        makeEnv({ dir }),
      );
      await expect(provider.drain(makeContext())).rejects.toThrow(
        /fails before graywave changed anything \(exit 1: nginx: \[emerg\] unknown directive\); fix the config first/,
      );
      expect(readFileSync(file, 'utf8')).toBe(conf(['10.0.0.1:80']));
      expect(existsSync(join(dir, '.app.conf.graywave-bak'))).toBe(false);
    } finally {
      removeDir(dir);
    }
  });

  it('all or none: when the second LB fails, the first is put back', async () => {
    const dir = tempDir('nginx-logic');
    try {
      const a = join(dir, 'a.conf');
      const b = join(dir, 'b.conf');
      writeFileSync(a, conf(['10.0.0.1:80', '10.0.0.2:80']));
      writeFileSync(b, conf(['10.0.0.2:80'])); // lb2 does not know this host
      // "lb2" reached through the playbook transport: here a local shell that sees b.conf at a.conf's path
      const local = new LocalTransport(dir);
      const remote: Transport = {
        ...local,
        exec: (h, cmd, o) => local.exec(h, cmd.replaceAll(a, b), o),
        upload: local.upload,
        release: local.release,
        close: local.close,
      };
      const provider = create(
        { at: ['local', 'lb2'], config: a, upstream: 'app', server: '10.0.0.1:80', test: 'true', reload: 'true', checkWorkers: false },
        makeEnv({ dir, transport: remote }),
      );
      await expect(provider.drain(makeContext())).rejects.toThrow(
        /nginx on lb2 \(host app-01, .*a\.conf\): no "server 10.0.0.1:80" line in upstream app \(servers: 10.0.0.2:80\) \(put back on local\)/,
      );
      expect(readFileSync(a, 'utf8')).toBe(conf(['10.0.0.1:80', '10.0.0.2:80']));
      expect(await provider.isDrained(makeContext())).toMatchObject({ done: false });
    } finally {
      removeDir(dir);
    }
  });

  it('refuses to edit a file the transport could not read whole (output is bounded at 64 KiB)', async () => {
    const dir = tempDir('nginx-logic');
    try {
      const big = `${'# padding '.repeat(8000)}\n${conf(['10.0.0.1:80'])}`;
      writeFileSync(join(dir, 'app.conf'), big);
      const provider = create(
        { config: 'app.conf', upstream: 'app', server: '10.0.0.1:80', test: 'true', reload: 'true', checkWorkers: false },
        makeEnv({ dir }),
      );
      await expect(provider.drain(makeContext())).rejects.toThrow(/read \d+ of 80042 bytes of the config; keep the upstream in a smaller file/);
      expect(readFileSync(join(dir, 'app.conf'), 'utf8')).toBe(big);
    } finally {
      removeDir(dir);
    }
  });

  it('rejects unknown options and relative configs for remote places', () => {
    expect(nginxProvider.options.safeParse({ config: 'a', upstream: 'u', server: 's', weight: 0 }).success).toBe(false);
    expect(() => create({ at: ['10.0.0.9'], config: 'rel.conf', upstream: 'u', server: 's' })).toThrow(/must be an absolute path/);
  });

  it('is not drained while a monitor says traffic, or when the monitor cannot answer', async () => {
    const dir = tempDir('nginx-logic');
    try {
      writeFileSync(join(dir, 'app.conf'), conf(['10.0.0.1:80 down']));
      const provider = create(
        { config: 'app.conf', upstream: 'app', server: '10.0.0.1:80', checkWorkers: false, monitor: { provider: 'prom', query: 'rate{i="{{host.name}}"}' } },
        makeEnv({ dir }),
      );
      const queries: string[] = [];
      let value: number | Error = 3;
      const monitor = () => ({
        value: async (_c: unknown, q: string) => {
          queries.push(q);
          if (value instanceof Error) throw value;
          return value;
        },
      });
      expect(await provider.isDrained(makeContext())).toMatchObject({ done: false, observed: expect.stringMatching(/not reachable/) });
      expect(await provider.isDrained(makeContext({ extra: { monitor } }))).toMatchObject({
        done: false,
        observed: expect.stringMatching(/still has traffic: 3/),
      });
      value = new Error('no data for the query');
      expect(await provider.isDrained(makeContext({ extra: { monitor } }))).toMatchObject({ done: false, observed: expect.stringMatching(/no data/) });
      value = 0;
      expect(await provider.isDrained(makeContext({ extra: { monitor } }))).toMatchObject({ done: true });
      expect(queries.at(-1)).toBe('rate{i="app-01"}');
    } finally {
      removeDir(dir);
    }
  });
});
