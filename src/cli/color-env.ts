/**
 * The colour settings, settled before any other module is loaded (chalk and listr2's palette read them once, when
 * they load): `--no-color` turns colours off; otherwise FORCE_COLOR (any value but 0/false) forces them and wins
 * over NO_COLOR (as in chalk); otherwise NO_COLOR (any value, even empty) turns them off. The two libraries disagree
 * on a few of these cases (colorette takes FORCE_COLOR=0 as "force", NO_COLOR over FORCE_COLOR; chalk ignores
 * NO_COLOR), so both variables are set here to say the one answer. bin/graywave.js imports this first.
 */
const env = process.env;
const forced = env.FORCE_COLOR === undefined ? undefined : !/^(0|false)$/i.test(env.FORCE_COLOR);
if (process.argv.includes('--no-color') || forced === false) {
  env.NO_COLOR = '1';
  env.FORCE_COLOR = '0';
} else if (forced) {
  delete env.NO_COLOR;
} else if (env.NO_COLOR !== undefined) {
  env.FORCE_COLOR = '0';
}
export {};
