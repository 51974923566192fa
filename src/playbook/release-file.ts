import { resolve } from 'node:path';
import { isMap } from 'yaml';
import { loadPlaybook } from './load.js';
import { readSource } from './parse/read.js';
import type { Source } from './source.js';
import { loadTrain, type Train } from './train.js';
import type { Playbook } from './types.js';

/**
 * A file a command names: a playbook, or a release train (a YAML mapping with `apps:`). `load()` reads it as that
 * (every problem a ConfigError, as loadPlaybook / loadTrain report them).
 */
export type ReleaseFile = { kind: 'playbook'; load: () => Playbook } | { kind: 'train'; load: () => Train };

/**
 * Reads and parses the file once to tell a train from a playbook; the first `load()` builds from that same parse
 * (a later one reads the file again: loading applies `--set` to what it parsed). A file that cannot be read or is
 * not valid YAML counts as a playbook: its loader reports the problem.
 */
export function openReleaseFile(path: string): ReleaseFile {
  let src: Source | undefined = readSource(resolve(path), []);
  const take = () => {
    const s = src;
    src = undefined;
    return s;
  };
  const contents = src && !src.doc.errors.length ? src.doc.contents : undefined;
  if (isMap(contents) && contents.has('apps')) return { kind: 'train', load: () => loadTrain(path, take()) };
  return { kind: 'playbook', load: () => loadPlaybook(path, take()) };
}
