import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError } from '../../src/errors.js';
import { haproxyProvider, parseServersState, parseStat } from '../../src/providers/lb/haproxy.js';
import type { Provider } from '../../src/providers/types.js';
import { LocalTransport } from '../../src/transport/local.js';
import type { Transport } from '../../src/transport/types.js';
import { makeContext, makeEnv, makeHost } from '../helpers/contexts.js';
import { get, hasHaproxy, startHaproxy, startHoldingBackend, type HaproxyServer, type HoldingBackend } from './helpers/haproxy.js';
import { waitFor } from '../helpers/wait.js';

const has = hasHaproxy();

function create(options: Record<string, unknown>, env = makeEnv()): Provider {
  return haproxyProvider.create(haproxyProvider.options.parse(options), env) as Provider;
}

describe('HAProxy answer parsing', () => {
  it('reads show stat by header names, whatever the column order', () => {
    const rows = parseStat('# svname,pxname,scur,qcur,status\nFRONTEND,fe,3,,OPEN\ns1,be,2,1,DRAIN\n\n');
    expect(rows[1]).toEqual({ svname: 's1', pxname: 'be', scur: '2', qcur: '1', status: 'DRAIN' });
    expect(() => parseStat('Unknown command\n')).toThrow(/no CSV header/);
  });
  it('reads show servers state and reports HAProxy errors', () => {
    const rows = parseServersState('1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state\n3 be 1 s1 127.0.0.1 2 8\n');
    expect(rows).toEqual([{ be_id: '3', be_name: 'be', srv_id: '1', srv_name: 's1', srv_addr: '127.0.0.1', srv_op_state: '2', srv_admin_state: '8' }]);
    expect(() => parseServersState("Can't find backend.\n")).toThrow("Can't find backend.");
  });
});

describe.skipIf(!has)('haproxy provider against a real HAProxy', () => {
  let hap: HaproxyServer;
  let a: HoldingBackend;
  let b: HoldingBackend;
  const url = () => `http://127.0.0.1:${hap.port}/`;

  beforeAll(async () => {
    a = await startHoldingBackend('a');
    b = await startHoldingBackend('b');
    hap = await startHaproxy({ s1: a.address, s2: b.address, s3: b.address });
  });
  afterAll(async () => {
    a?.release();
    b?.release();
    await hap?.stop();
    await a?.close();
    await b?.close();
  });

  async function adminState(server: string): Promise<number> {
    const out = await new LocalTransport().exec(makeHost(), `echo "show servers state be" | socat stdio unix-connect:${hap.socket}`);
    return Number(parseServersState(out.stdout).find((r) => r.srv_name === server)!.srv_admin_state);
  }

  it('drains: new requests avoid the server, sessions in flight finish, isDrained waits for scur 0 then sets maint; restore makes it ready', async () => {
    const provider = create({ socket: hap.socket, backend: 'be', server: '{{host.name}}' });
    const ctx = makeContext({ host: makeHost('s1', '127.0.0.1') });
    a.hold();
    // round robin over s1, s2, s3: six requests put two sessions on s1, held open by backend a
    const inFlight = Array.from({ length: 6 }, () => get(url()));
    await waitFor(() => a.held === 2, 'two held sessions on s1', { timeoutMs: 5_000 });

    const saved = await provider.drain(ctx);
    expect(saved).toEqual({ backend: 'be', server: 's1', added: ['local'], weights: { local: 1 } });
    expect(await adminState('s1')).toBe(0x08);
    expect(await provider.isDrained(ctx)).toEqual({ done: false, observed: 'be/s1 on local: 2 sessions, 0 queued' });

    const before = a.count;
    for (let i = 0; i < 9; i++) expect(await get(url())).toBe(200);
    expect(a.count).toBe(before); // no new session reaches a draining server

    a.release(false); // the two sessions in flight complete normally
    expect(await Promise.all(inFlight)).toEqual([200, 200, 200, 200, 200, 200]);
    const check = await waitFor(
      async () => {
        const c = await provider.isDrained(ctx);
        return c.done && c;
      },
      'isDrained to say done',
      { timeoutMs: 10_000 },
    );
    expect(check).toEqual({ done: true, observed: 'be/s1 local: MAINT, 0 sessions' });
    expect(await adminState('s1')).toBe(0x01);
    expect(await provider.isDrained(ctx)).toMatchObject({ done: true }); // repeatable

    // drain again (resume): nothing changes, and the journal entry still owns the change
    expect(await provider.drain(makeContext({ host: ctx.host, previous: saved }))).toEqual(saved);
    expect(await adminState('s1')).toBe(0x01);

    a.release(true);
    expect(await provider.isRestored!(ctx, saved)).toEqual({ done: false, observed: 'be/s1 on local is still in maint' });
    await provider.restore(ctx, saved);
    await provider.restore(ctx, saved); // idempotent
    expect(await adminState('s1')).toBe(0);
    expect(await provider.isRestored!(ctx, saved)).toEqual({ done: true, observed: 'be/s1 local: no check, weight 1' });
    const c = a.count;
    for (let i = 0; i < 6; i++) await get(url());
    expect(a.count).toBeGreaterThan(c);
    expect(await provider.isDrained(ctx)).toEqual({ done: false, observed: 'be/s1 on local is not in drain or maint' });
  });

  it('warm-up: setWeight ramps to a share of the weight the server had, restore puts that weight back; a server left in maint reads back as not serving', async () => {
    const sock = (cmd: string) => new LocalTransport().exec(makeHost(), `echo ${JSON.stringify(cmd)} | socat stdio unix-connect:${hap.socket}`);
    await sock('set server be/s2 weight 10');
    try {
      const provider = create({ socket: hap.socket, backend: 'be', server: 's2' });
      const ctx = makeContext({ host: makeHost('s2') });
      const saved = await provider.drain(ctx);
      expect(saved).toMatchObject({ added: ['local'], weights: { local: 10 } });
      await provider.setWeight!(ctx, saved, 50);
      expect((await sock('get weight be/s2')).stdout.trim()).toBe('5 (initial 1)');
      expect(await adminState('s2')).toBe(0);
      await provider.setWeight!(ctx, saved, 10);
      expect((await sock('get weight be/s2')).stdout.trim()).toBe('1 (initial 1)');
      await provider.restore(ctx, saved);
      expect((await sock('get weight be/s2')).stdout.trim()).toBe('10 (initial 1)');
      expect(await provider.isRestored!(ctx, saved)).toEqual({ done: true, observed: 'be/s2 local: no check, weight 10' });
      // Someone puts it in maint again (or a reload lost the runtime state): not serving.
      await sock('set server be/s2 state maint');
      expect(await provider.isRestored!(ctx, saved)).toEqual({ done: false, observed: 'be/s2 on local is still in maint' });
      await sock('set server be/s2 state ready');
      await sock('set server be/s2 weight 0');
      expect(await provider.isRestored!(ctx, saved)).toEqual({ done: false, observed: 'be/s2 on local has weight 0' });
      expect(await provider.isRegistered!(ctx)).toMatchObject({ done: true });
      expect(await create({ socket: hap.socket, backend: 'be', server: '{{host.name}}' }).isRegistered!(makeContext({ host: makeHost('s9') }))).toMatchObject({
        done: false,
        observed: expect.stringContaining('no server s9 in backend be'),
      });
    } finally {
      await sock('set server be/s2 state ready');
      await sock('set server be/s2 weight 1');
    }
  });

  it('leaves a server an operator had put in maint as it was, over the TCP admin socket', async () => {
    await new LocalTransport().exec(makeHost(), `echo "set server be/s3 state maint" | socat stdio unix-connect:${hap.socket}`);
    try {
      const provider = create({ socket: hap.tcpSocket, backend: 'be', server: 's3' });
      const ctx = makeContext({ host: makeHost('s3') });
      const saved = await provider.drain(ctx);
      expect(saved).toEqual({ backend: 'be', server: 's3', added: [], weights: { local: 1 } });
      expect(await provider.isDrained(ctx)).toMatchObject({ done: true });
      await provider.restore(ctx, saved);
      expect(await adminState('s3')).toBe(0x01);
    } finally {
      await new LocalTransport().exec(makeHost(), `echo "set server be/s3 state ready" | socat stdio unix-connect:${hap.socket}`);
    }
  });

  it('reaches a remote `at` entry through the transport with socat', async () => {
    const local = new LocalTransport();
    const commands: string[] = [];
    const transport: Transport = {
      ...local,
      exec: (h, cmd, o) => (commands.push(`${h.name}: ${cmd}`), local.exec(h, cmd, o)),
      upload: local.upload,
      release: local.release,
      close: local.close,
    };
    const provider = create({ at: ['lb2'], socket: hap.socket, backend: 'be', server: 's2' }, makeEnv({ transport }));
    const ctx = makeContext({ host: makeHost('s2') });
    const saved = await provider.drain(ctx);
    expect(saved).toEqual({ backend: 'be', server: 's2', added: ['lb2'], weights: { lb2: 1 } });
    expect(await adminState('s2')).toBe(0x08);
    await provider.restore(ctx, saved);
    expect(await adminState('s2')).toBe(0);
    expect(commands[0]).toMatch(/^lb2: socat -t 10 stdio unix-connect\\?:\/.*\/admin\.sock$/);
  });

  it('fails clearly for an unknown server or backend, and a missing socket is never drained', async () => {
    const err = await create({ socket: hap.socket, backend: 'be', server: 'nope' })
      .drain(makeContext())
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).retryable).toBe(false);
    expect((err as Error).message).toMatch(/HAProxy on local \(socket .*admin\.sock, host app-01\): no server nope in backend be \(servers: s1, s2, s3\)/);
    await expect(create({ socket: hap.socket, backend: 'nobe', server: 's1' }).drain(makeContext())).rejects.toThrow(
      /show servers state nobe.*Can't find backend/,
    );
    const gone = create({ socket: `${hap.dir}/missing.sock`, backend: 'be', server: 's1' });
    expect(await gone.isDrained(makeContext())).toMatchObject({ done: false, observed: expect.stringMatching(/ENOENT/) });
  });

  it('all or none: when the second HAProxy fails, the first is set ready again', async () => {
    const local = new LocalTransport();
    const broken: Transport = {
      ...local,
      exec: async () => ({ code: 1, timedOut: false, stdout: '', stderr: 'socat: E connect(): Connection refused' }),
      upload: local.upload,
      release: local.release,
      close: local.close,
    };
    const provider = create({ at: ['local', 'lb2'], socket: hap.socket, backend: 'be', server: 's2' }, makeEnv({ transport: broken }));
    await expect(provider.drain(makeContext())).rejects.toThrow(/HAProxy on lb2 .*Connection refused.*\(put back on local\)/);
    expect(await adminState('s2')).toBe(0);
  });
});
