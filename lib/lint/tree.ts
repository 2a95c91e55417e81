/**
 * Reads an output tree (`k8s/`, or a synthesized environment in memory) into the linter's
 * objects. Helm values files (`*.values.yaml`) are chart inputs, not manifests: charts are
 * rendered by Argo CD in the cluster, so their objects are not here to lint.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, sep } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { HELM_VALUES_FILE } from '../synth';
import type { LintedObject, Manifest } from './model';

/** Environment name -> (path relative to the environment folder -> content). */
export type OutputTree = ReadonlyMap<string, ReadonlyMap<string, string>>;

/** `<dir>/<env>/<service>/<file>.yaml`, read into an OutputTree. */
export function readOutputTree(dir: string): OutputTree {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: no such directory`);
  const tree = new Map<string, Map<string, string>>();
  for (const env of readdirSync(dir).sort()) {
    const envDir = join(dir, env);
    if (!statSync(envDir).isDirectory()) continue;
    const files = new Map<string, string>();
    for (const file of (readdirSync(envDir, { recursive: true }) as string[]).filter((f) => /\.ya?ml$/.test(f)).sort()) {
      files.set(file.split(sep).join('/'), readFileSync(join(envDir, file), 'utf8'));
    }
    tree.set(env, files);
  }
  return tree;
}

/** The Kubernetes objects of one environment's files, in file order. */
export function objectsOf(env: string, files: ReadonlyMap<string, string>): LintedObject[] {
  return [...files].flatMap(([path, content]) => {
    if (HELM_VALUES_FILE.test(basename(path))) return [];
    const service = path.includes('/') ? path.slice(0, path.indexOf('/')) : '';
    return parseAllDocuments(content)
      .map((document) => document.toJS() as Manifest | null)
      .filter((manifest): manifest is Manifest => typeof manifest?.kind === 'string')
      .map((manifest) => ({ env, service, file: `${env}/${path}`, manifest }));
  });
}
