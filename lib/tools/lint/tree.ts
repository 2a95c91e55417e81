/**
 * Reads an output tree (`k8s/`, or a synthesized environment in memory) into the linter's
 * objects. Helm values files (`*.values.yaml`) are chart inputs, not manifests: charts are
 * rendered by Argo CD in the cluster, so their objects are not here to lint.
 */
import { existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { CORE_SCHEMA, loadAll } from 'js-yaml';
import { isOutputFilePath } from '../../output/output-guard';
import { readDirectoryTree } from '../../output/output-tree';
import { HELM_VALUES_FILE } from '../../output/synthesize';
import { UserError } from '../../util/errors';
import type { LintedObject, Manifest } from './model';

/** Environment name -> (path relative to the environment folder -> content). */
export type OutputTree = ReadonlyMap<string, ReadonlyMap<string, string>>;

/** `<dir>/<env>/<service>/<file>.yaml`, read into an OutputTree (files directly in `<dir>` belong to no environment). */
export function readOutputTree(dir: string): OutputTree {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UserError([`${dir}: no such directory`]);
  const tree = new Map<string, Map<string, string>>();
  for (const [path, content] of readDirectoryTree(dir)) {
    const slash = path.indexOf('/');
    if (slash < 0 || !/\.ya?ml$/.test(path)) continue;
    // A folder of a tree (k8s/prod) or its parent (the repository) would be linted as wrong environments.
    if (!isOutputFilePath(path)) throw new UserError([`${dir}: expected an output tree, <env>/<service>/<file>.yaml, found ${path} (--dir)`]);
    const env = path.slice(0, slash);
    tree.set(env, (tree.get(env) ?? new Map<string, string>()).set(path.slice(slash + 1), content));
  }
  return tree;
}

/** The Kubernetes objects of one environment's files, in file order. */
export function objectsOf(env: string, files: ReadonlyMap<string, string>): LintedObject[] {
  return lintedObjects(env, documentsOf(files, `${env}/`));
}

/**
 * Every YAML document of the files with its file's path, in file order; Helm values files are
 * not manifests. `folder` is where the files are, for messages. js-yaml with the YAML 1.2 core schema: it reads the output as the `yaml`
 * package does (the emitter writes strings plain only where every parser agrees, lib/util/
 * yaml-emitter.ts) and several times faster, which matters for the linter and the tests that
 * read whole trees.
 */
export function documentsOf(files: ReadonlyMap<string, string>, folder = ''): { path: string; manifest: unknown }[] {
  const documents: { path: string; manifest: unknown }[] = [];
  for (const [path, content] of files) {
    if (HELM_VALUES_FILE.test(basename(path))) continue;
    try {
      for (const manifest of loadAll(content, undefined, { schema: CORE_SCHEMA })) documents.push({ path, manifest });
    } catch (error) {
      throw new UserError([`${folder}${path}: invalid YAML: ${(error as Error).message.split('\n')[0]}`]);
    }
  }
  return documents;
}

/** Documents already parsed, with their path relative to the environment folder, as the linter's objects. */
export function lintedObjects(env: string, documents: Iterable<{ readonly path: string; readonly manifest: unknown }>): LintedObject[] {
  const objects: LintedObject[] = [];
  for (const { path, manifest } of documents) {
    if (typeof (manifest as Manifest | null)?.kind !== 'string') continue;
    const service = path.includes('/') ? path.slice(0, path.indexOf('/')) : '';
    objects.push({ env, service, file: `${env}/${path}`, manifest: manifest as Manifest });
  }
  return objects;
}
