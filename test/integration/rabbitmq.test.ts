import http from 'node:http';
import type { AddressInfo } from 'node:net';
import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRabbitmqProvider, rabbitmqOptions, rabbitmqProvider, type RabbitmqDrained } from '../../src/providers/mq/rabbitmq.js';
import type { Provider } from '../../src/providers/types.js';
import { makeContext, makeEnv, makeHost, makeStepContext } from '../helpers/contexts.js';
import { restoreAction } from '../../src/actions/provider-steps.js';
import { hasRabbitmq, startRabbitmq, type RabbitServer } from './helpers/rabbitmq.js';
import { freePort, waitFor } from './helpers/process.js';

const has = hasRabbitmq();
const SECRET_ENV = { RMQ_USER: 'guest', RMQ_PASSWORD: 'guest', RMQ_BAD: 'not-the-password' };

/**
 * A stand-in for the application on one host: an AMQP consumer whose socket is bound to the host's loopback
 * address (so the broker's peer_host names the host), and an admin HTTP endpoint on that address that
 * cancels / restarts the consumer, as an app exposing suspend/resume would.
 */
class FakeApp {
  conn!: ChannelModel;
  ch!: Channel;
  tag?: string;
  http?: http.Server;
  requests: string[] = [];
  closedWith?: string;

  constructor(
    readonly address: string,
    readonly queue: string,
  ) {}

  async connect(amqpPort: number) {
    this.conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${amqpPort}`, { localAddress: this.address } as Record<string, unknown>); // a socket option amqplib passes on to net.connect
    this.conn.on('error', (err: Error) => (this.closedWith = err.message));
    this.conn.on('close', (err?: Error) => (this.closedWith ??= err?.message ?? 'closed'));
    this.ch = await this.conn.createChannel();
    await this.ch.assertQueue(this.queue, { durable: false });
    await this.consume();
  }

  async consume() {
    this.tag = (await this.ch.consume(this.queue, (m) => m && this.ch.ack(m))).consumerTag;
  }

  async serveAdmin(): Promise<number> {
    const port = await freePort();
    this.http = http.createServer((req, res) => {
      this.requests.push(`${req.method} ${req.url}`);
      const done = (code: number) => (res.writeHead(code), res.end());
      if (req.method === 'POST' && req.url === '/admin/mq/suspend') {
        const tag = this.tag;
        this.tag = undefined;
        void (tag ? this.ch.cancel(tag) : Promise.resolve()).then(
          () => done(200),
          () => done(500),
        );
      } else if (req.method === 'POST' && req.url === '/admin/mq/resume') {
        void (this.tag ? Promise.resolve() : this.consume()).then(
          () => done(200),
          () => done(500),
        );
      } else done(404);
    });
    await new Promise<void>((r) => this.http!.listen(port, this.address, r));
    return (this.http.address() as AddressInfo).port;
  }

  async stop() {
    await this.conn?.close().catch(() => {});
    await new Promise((r) => (this.http ? this.http.close(r) : r(null)));
  }
}

describe.skipIf(!has)('rabbitmq provider against a real RabbitMQ with the management plugin', () => {
  let rmq: RabbitServer;
  const apps: FakeApp[] = [];
  const providers: Provider[] = [];

  beforeAll(async () => {
    rmq = await startRabbitmq({ statsMs: 500 });
  });
  afterAll(async () => {
    for (const a of apps) await a.stop();
    for (const p of providers) await p.close?.();
    await rmq?.stop();
  });

  async function app(address: string, queue: string) {
    const a = new FakeApp(address, queue);
    apps.push(a);
    await a.connect(rmq.amqpPort);
    return a;
  }

  function provider(opts: Record<string, unknown>) {
    const p = createRabbitmqProvider(
      rabbitmqOptions.parse({ url: rmq.api, username: { env: 'RMQ_USER' }, password: { env: 'RMQ_PASSWORD' }, statsInterval: '1s', ...opts }),
      makeEnv({ env: SECRET_ENV }),
    );
    providers.push(p);
    return p;
  }

  /** Consumers the broker lists, by peer host (straight from the API, independent of the provider). */
  async function peersOf(queue: string): Promise<string[]> {
    const res = await fetch(`${rmq.api}/api/queues/%2F/${queue}`, { headers: { authorization: 'Basic ' + Buffer.from('guest:guest').toString('base64') } });
    const body = (await res.json()) as { consumer_details?: { channel_details: { peer_host: string } }[] };
    return (body.consumer_details ?? []).map((c) => c.channel_details.peer_host).sort();
  }

  it('options are strict, need a way to drain, and take secrets only as references', () => {
    expect(rabbitmqProvider.type).toBe('rabbitmq');
    const base = { url: 'http://127.0.0.1:15672', username: 'app', password: { env: 'P' } };
    expect(() => rabbitmqOptions.parse(base)).toThrow(/suspend .*or closeConnections/);
    expect(() => rabbitmqOptions.parse({ ...base, closeConnections: true, password: 'plain' })).toThrow();
    // The shape: suspend alone (resume is optional).
    expect(() => rabbitmqOptions.parse({ ...base, suspend: { http: 'http://x/s', method: 'POST' } })).not.toThrow();
    expect(() => rabbitmqOptions.parse({ ...base, closeConnections: true, extra: 1 })).toThrow(/extra/);
  });

  it('suspend: the app cancels its consumer, drained only after one stats interval, the other host untouched, resume on restore', async () => {
    const mine = await app('127.0.0.23', 'orders');
    const other = await app('127.0.0.24', 'orders');
    const port = await mine.serveAdmin();
    const p = provider({
      suspend: { http: `http://{{host.address}}:${port}/admin/mq/suspend`, method: 'POST' },
      resume: { http: `http://{{host.address}}:${port}/admin/mq/resume`, method: 'POST' },
      // Long enough that the first poll right after drain falls inside it even on a loaded machine.
      statsInterval: '2s',
    });
    const ctx = makeContext({ host: makeHost('app-23', '127.0.0.23') });

    await waitFor(async () => (await peersOf('orders')).length === 2, 'both consumers listed');
    expect(await p.isDrained(ctx)).toMatchObject({ done: false, observed: expect.stringMatching(/1 consumer\(s\) from 127\.0\.0\.23 on orders/) });

    const saved = (await p.drain(ctx)) as RabbitmqDrained;
    expect(mine.requests).toEqual(['POST /admin/mq/suspend']);
    expect(saved).toMatchObject({ peerHost: '127.0.0.23', suspended: true, closed: [] });
    expect(JSON.stringify(saved)).not.toContain('guest');

    // Right after drain the list may still be stale, and even an empty one is not believed yet.
    const first = await p.isDrained(ctx);
    expect(first.done).toBe(false);
    await waitFor(async () => (await p.isDrained(ctx)).done, 'drained', { timeoutMs: 10_000, everyMs: 100 });
    expect(Date.now() - saved.drainedAt).toBeGreaterThanOrEqual(2000);
    expect(await peersOf('orders')).toEqual(['127.0.0.24']);
    expect(other.closedWith).toBeUndefined();

    await p.restore(ctx, saved);
    expect(mine.requests).toEqual(['POST /admin/mq/suspend', 'POST /admin/mq/resume']);
    await waitFor(async () => (await peersOf('orders')).length === 2, 'consumer back');
    expect((await p.isDrained(ctx)).done).toBe(false);
  });

  it('suspend without resume: restore calls nothing; a consumer that does not come back fails the host (restored but not serving), one that does passes', async () => {
    const mine = await app('127.0.0.31', 'refunds');
    const port = await mine.serveAdmin();
    const p = provider({ suspend: { http: `http://{{host.address}}:${port}/admin/mq/suspend`, method: 'POST' } });
    const host = makeHost('app-31', '127.0.0.31');
    const ctx = makeContext({ host });
    await waitFor(async () => (await peersOf('refunds')).length === 1, 'consumer listed');

    const saved = (await p.drain(ctx)) as RabbitmqDrained;
    expect(saved).toMatchObject({ suspended: true, consumers: 1 });
    await waitFor(async () => (await p.isDrained(ctx)).done, 'drained', { timeoutMs: 10_000, everyMs: 100 });

    // The restore step, as the engine runs it: nobody restarts the app, so the host must fail, not count as done.
    const step = makeStepContext({ host, providers: { mq: p } });
    step.savedOf = (action, name) => (action === 'drain' && name === 'mq' ? saved : undefined);
    const params = restoreAction.params.parse({ provider: 'mq', restoreTimeout: '3s' });
    const t0 = Date.now();
    const err = await restoreAction.do(step, params).catch((e: Error) => e);
    expect(String(err)).toMatch(/restored in mq but not serving: no consumer from 127\.0\.0\.31 listed on vhost \/ \(no resume call is configured/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2500);
    expect(step.progressLines.join('\n')).toMatch(/not serving yet/);

    // The app restarts its consumer (as the deploy would): the step passes, having called nothing on the app.
    const seen = step.progressLines.length;
    const running = restoreAction.do(step, restoreAction.params.parse({ provider: 'mq', restoreTimeout: '30s' }));
    await waitFor(() => step.progressLines.slice(seen).some((l) => /not serving yet/.test(l)), 'the second restore to see no consumer yet', {
      timeoutMs: 10_000,
      everyMs: 20,
    });
    await mine.consume();
    await running;
    expect(mine.requests).toEqual(['POST /admin/mq/suspend']);
    expect(await p.isRestored!(ctx, saved)).toMatchObject({ done: true, observed: '1 consumer(s) from 127.0.0.31 on refunds' });

    // A host that had no consumer when drained is not waited for; an unreachable API is never "restored".
    expect(await p.isRestored!(ctx, { ...saved, consumers: 0 })).toMatchObject({ done: true });
    const dead = provider({ url: 'http://127.0.0.1:1', closeConnections: true });
    expect(await dead.isRestored!(ctx, saved)).toMatchObject({ done: false, observed: expect.stringMatching(/state unknown/) });
  });

  it('an isDrained that did not see the drain (resumed run) waits one interval from the saved drain time or its first poll', async () => {
    await app('127.0.0.26', 'invoices');
    const p = provider({ closeConnections: true });
    // No consumer from .27 at all, but this provider never drained it: the first poll starts the interval.
    const ctx = makeContext({ host: makeHost('app-27', '127.0.0.27') });
    const t0 = Date.now();
    expect(await p.isDrained(ctx)).toMatchObject({ done: false, observed: expect.stringMatching(/waiting/) });
    await waitFor(async () => (await p.isDrained(ctx)).done, 'drained one stats interval after the first poll', { timeoutMs: 10_000, everyMs: 100 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000); // not before one interval (statsInterval: 1s)
    // With a saved drain time long past, a fresh provider believes the empty list at once.
    const fresh = provider({ closeConnections: true });
    const resumed = makeContext({ host: makeHost('app-28', '127.0.0.28'), previous: { drainedAt: Date.now() - 60_000 } });
    expect(await fresh.isDrained(resumed)).toMatchObject({ done: true });
  });

  it("closeConnections: the host's connections are closed with the reason; other hosts stay connected", async () => {
    const mine = await app('127.0.0.25', 'payments');
    const other = await app('127.0.0.29', 'payments');
    const p = provider({ closeConnections: true, closeReason: 'graywave release r1' });
    const ctx = makeContext({ host: makeHost('app-25', '127.0.0.25') });
    // Connections appear in the management API with the stats, not instantly.
    await waitFor(async () => (await peersOf('payments')).length === 2, 'both consumers listed');

    const saved = (await p.drain(ctx)) as RabbitmqDrained;
    expect(saved.closed).toHaveLength(1);
    expect(saved.closed[0]).toMatch(/^127\.0\.0\.25:\d+ -> 127\.0\.0\.1:\d+$/);
    await waitFor(() => mine.closedWith !== undefined, 'client saw the close');
    expect(mine.closedWith).toMatch(/graywave release r1/);
    await waitFor(async () => (await p.isDrained(ctx)).done, 'drained', { timeoutMs: 10_000, everyMs: 100 });
    expect(await peersOf('payments')).toEqual(['127.0.0.29']);
    expect(other.closedWith).toBeUndefined();

    // Repeating the drain (resume) finds nothing left to close; restore has nothing to undo on the broker.
    expect(((await p.drain(ctx)) as RabbitmqDrained).closed).toEqual([]);
    await p.restore(ctx, saved);
    expect(ctx.lines.join('\n')).toMatch(/for the app to re-open/);
  });

  it('unknown state is never drained: wrong password (not echoed), unreachable API', async () => {
    const bad = createRabbitmqProvider(
      rabbitmqOptions.parse({ url: rmq.api, username: 'guest', password: { env: 'RMQ_BAD' }, closeConnections: true, statsInterval: 0 }),
      makeEnv({ env: SECRET_ENV }),
    );
    const ctx = makeContext({ host: makeHost('app-30', '127.0.0.30') });
    const check = await bad.isDrained(ctx);
    expect(check).toMatchObject({ done: false, observed: expect.stringMatching(/HTTP 401.*username\/password/) });
    expect(check.observed).not.toContain('not-the-password');
    await expect(bad.drain(ctx)).rejects.toThrow(/HTTP 401/);

    const port = await freePort();
    const dead = createRabbitmqProvider(
      rabbitmqOptions.parse({
        url: `http://127.0.0.1:${port}`,
        username: 'guest',
        password: { env: 'RMQ_PASSWORD' },
        closeConnections: true,
        statsInterval: 0,
      }),
      makeEnv({ env: SECRET_ENV }),
    );
    expect(await dead.isDrained(ctx)).toMatchObject({ done: false, observed: expect.stringMatching(/ECONNREFUSED/) });
  });
});
