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

const later = (ms: number, fail: boolean) => new Promise((res, rej) => setTimeout(() => (fail ? rej(new Error('late failure')) : res('late value')), ms));
const settle = () => new Promise((r) => setTimeout(r, 60));

describe('abortable', () => {
  it('an already aborted signal rejects at once with its reason; the work failing afterwards is not an unhandled rejection', async () => {
    const ctl = new AbortController();
    ctl.abort(new Error('interrupted (Ctrl-C)'));
    await expect(abortable(later(10, true), ctl.signal)).rejects.toThrow('interrupted (Ctrl-C)');
    await settle();
    expect(unhandled).toEqual([]);
  });

  it('an abort during the work rejects with the reason; the work failing afterwards is handled too', async () => {
    const ctl = new AbortController();
    const p = abortable(later(30, true), ctl.signal);
    ctl.abort(new Error('interrupted (Ctrl-C)'));
    await expect(p).rejects.toThrow('interrupted (Ctrl-C)');
    await settle();
    expect(unhandled).toEqual([]);
  });

  it('without an abort, the work decides', async () => {
    const ctl = new AbortController();
    await expect(abortable(later(5, false), ctl.signal)).resolves.toBe('late value');
    await expect(abortable(later(5, true), ctl.signal)).rejects.toThrow('late failure');
  });
});
