/**
 * The commands package.json's scripts run, each as `node [options] bin/run.cjs <command>` (with
 * the same Node.js options every one: test/compiled-cli.test.ts), read from package.json: a
 * command that starts another (upgrade's synth, bench's synths of own apps, the tests' runCli)
 * starts it as `npm run` would, with no copy of the options to fall out of step.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from './project';

export interface NpmCommand {
  /** The command bin/run.cjs runs, e.g. `synth`. */
  readonly command: string;
  /** The options the script passes to Node.js, e.g. `--max-semi-space-size=4`. */
  readonly nodeOptions: readonly string[];
}

const SCRIPT = /^node ((?:--\S+ )*)bin\/run\.cjs (\w+)$/;

/** Every script of package.json that runs bin/run.cjs; one of another shape is a bug here. */
export function npmCommands(root = projectRoot()): NpmCommand[] {
  const scripts = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  return Object.values(scripts)
    .filter((script) => script.includes('bin/run.cjs'))
    .map((script) => {
      const run = SCRIPT.exec(script);
      if (!run) throw new Error(`package.json: a script runs bin/run.cjs otherwise than \`node [options] bin/run.cjs <command>\`: ${script}`);
      return { command: run[2], nodeOptions: run[1].split(' ').filter((option) => option !== '') };
    });
}

/** The arguments after `node` that `npm run <command>` runs: its Node.js options, bin/run.cjs's path and the command. */
export function npmCommandArgs(command: string, root = projectRoot()): string[] {
  const script = npmCommands(root).find((candidate) => candidate.command === command);
  if (!script) throw new Error(`package.json: no script runs bin/run.cjs ${command}`);
  return [...script.nodeOptions, join(root, 'bin', 'run.cjs'), command];
}
