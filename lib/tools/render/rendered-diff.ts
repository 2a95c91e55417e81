/**
 * The rendered sets of two output trees, for `npm run diff -- --rendered`: each tree (the
 * committed k8s/ of a revision, a fresh synth) is written to a scratch folder and rendered as
 * Argo CD would (render.ts), so the diff shows what a chart bump or a values change does to the
 * objects in the cluster — added, removed and changed objects with their changed fields — not
 * only the changed `targetRevision` or values.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { renderEnvironment, RenderOptions } from './render';
import { renderedFiles } from './rendered-tree';

/** `<env>/<Application>/<object file>` -> content: the rendered set of an output tree (`<env>/<folder>/<file>` -> content). */
export async function renderTree(tree: ReadonlyMap<string, string>, options: Omit<RenderOptions, 'outdir' | 'environment'>): Promise<Map<string, string>> {
  const scratch = mkdtempSync(join(tmpdir(), 'homelab-rendered-diff-'));
  try {
    for (const [path, content] of tree) {
      mkdirSync(dirname(join(scratch, path)), { recursive: true });
      writeFileSync(join(scratch, path), content);
    }
    const environments = [...new Set([...tree.keys()].filter((path) => path.split('/')[1] === 'apps').map((path) => path.split('/')[0]))].sort();
    const rendered = new Map<string, string>();
    for (const environment of environments) {
      for (const [path, content] of renderedFiles(await renderEnvironment({ ...options, outdir: scratch, environment }))) rendered.set(`${environment}/${path}`, content);
    }
    return rendered;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
