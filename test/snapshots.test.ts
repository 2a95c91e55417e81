/**
 * Snapshots of every service's output, per environment, for review in pull requests: a
 * change to a construct shows up here as a readable diff. The invariant tests decide
 * whether the output is right; these only show what changed.
 */
import { describe, expect, it } from 'vitest';
import { synthesizeExample } from './support';

const envs = synthesizeExample();

describe.each(envs.map((env) => ({ env: env.environment, files: env.files })))('$env', ({ files }) => {
  const folders = [...new Set([...files.keys()].map((p) => p.split('/')[0]))].sort();
  it.each(folders)('%s', (folder) => {
    const content = [...files].filter(([path]) => path.startsWith(`${folder}/`)).map(([path, text]) => `=== ${path}\n${text}`);
    expect(content.join('\n')).toMatchSnapshot();
  });
});
