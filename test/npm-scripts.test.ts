/**
 * lib/util/npm-scripts.ts: the commands package.json's scripts run through bin/run.cjs, read so
 * that a command starting another starts it as `npm run` would.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { npmCommandArgs, npmCommands } from '../lib/util/npm-scripts';
import { tempDir } from './support';

/** A project folder whose package.json has these scripts. */
function projectWith(scripts: Record<string, string>): string {
  const root = tempDir();
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'p', scripts }));
  return root;
}

describe("package.json's commands", () => {
  it('are the scripts that run bin/run.cjs, each with its Node.js options', () => {
    const root = projectWith({ synth: 'node --max-semi-space-size=4 --no-warnings bin/run.cjs synth', test: 'vitest run', lint: 'node bin/run.cjs lint' });
    expect(npmCommands(root)).toEqual([
      { command: 'synth', nodeOptions: ['--max-semi-space-size=4', '--no-warnings'] },
      { command: 'lint', nodeOptions: [] },
    ]);
    expect(npmCommandArgs('synth', root)).toEqual(['--max-semi-space-size=4', '--no-warnings', join(root, 'bin', 'run.cjs'), 'synth']);
  });

  it('refuse a script that runs bin/run.cjs in another shape, and a command no script runs', () => {
    expect(() => npmCommands(projectWith({ synth: 'NODE_ENV=x node bin/run.cjs synth' }))).toThrow(/otherwise than `node \[options\] bin\/run\.cjs <command>`: NODE_ENV=x/);
    expect(() => npmCommandArgs('diff', projectWith({ synth: 'node bin/run.cjs synth' }))).toThrow('package.json: no script runs bin/run.cjs diff');
  });
});
