import { Option } from 'commander';

/** `--state-dir`, the same on every command that reads or writes a release's state. */
export const stateDirOption = () => new Option('--state-dir <dir>', 'where release state lives (default: .graywave next to the playbook)');

/** `--limit`, the same on `plan`, `run`, `resume` and `rollback`. */
export const limitOption = () =>
  new Option('--limit <hosts>', 'only these hosts: names, patterns (app-0*) or label=value, comma-separated; the rest stays pending');
