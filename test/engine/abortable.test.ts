/**
 * abortable(): the engine's race between a step's work and Ctrl-C. Work abandoned because the signal was already
 * aborted must not end the process with an unhandled rejection when it fails later (seen on a Ctrl-C of
 * `graywave demo` while a host moved on to its next step: a registry call rejected with nobody listening).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { abortable } from '../../src/engine/run.js';

const unhandled: unknown[] = [];
const onUnhandled = (err: unknown) => unhandled.push(err);
process.on('unhandledRejection', onUnhandled);
afterEach(() => {
  unhandled.length = 0;
});

/** Work the test ends by hand: after the abort, never racing a timer. */
function work() {
  let fail!: () => void;
  let succeed!: () => void;
  const promise = new Promise((res, rej) => {
    fail = () => rej(new Error('late failure'));
    succeed = () => res('late value');
  });
  return { promise, fail, succeed };
}
/** A few turns of the event loop: Node reports a rejection left unhandled once a turn's microtasks have run. */
const settle = async () => {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
};

describe('abortable', () => {
  it('an already aborted signal rejects at once with its reason; the work failing afterwards is not an unhandled rejection', async () => {
    const ctl = new AbortController();
    ctl.abort(new Error('interrupted (Ctrl-C)'));
    const w = work();
    await expect(abortable(w.promise, ctl.signal)).rejects.toThrow('interrupted (Ctrl-C)');
    w.fail();
    await settle();
    expect(unhandled).toEqual([]);
  });

  it('an abort during the work rejects with the reason; the work failing afterwards is handled too', async () => {
    const ctl = new AbortController();
    const w = work();
    const p = abortable(w.promise, ctl.signal);
    ctl.abort(new Error('interrupted (Ctrl-C)'));
    await expect(p).rejects.toThrow('interrupted (Ctrl-C)');
    w.fail();
    await settle();
    expect(unhandled).toEqual([]);
  });

  it('without an abort, the work decides', async () => {
    const ctl = new AbortController();
    const ok = work();
    const okRun = abortable(ok.promise, ctl.signal);
    ok.succeed();
    await expect(okRun).resolves.toBe('late value');
    const bad = work();
    const badRun = abortable(bad.promise, ctl.signal);
    bad.fail();
    await expect(badRun).rejects.toThrow('late failure');
  });
});
