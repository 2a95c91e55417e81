/**
 * The rendered set on disk: `<out>/<env>/<Application>/<kind>-<namespace>-<name>.yaml`, one
 * object a file (a cluster-scoped object has no namespace part), so that the rendered sets of
 * two revisions diff object by object with the same tools as k8s/ (lib/output/diff.ts). The
 * folder is scratch output (git-ignored): it is replaced, not merged.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync, existsSync, readdirSync, cpSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { emitYaml } from '../../util/yaml-emitter';
import type { RenderedObject } from './render';

/** The file of an object inside its Application's folder. */
export function renderedFileName(object: RenderedObject): string {
  const { kind, metadata } = object.manifest;
  return `${[kind, metadata.namespace, metadata.name]
    .filter(Boolean)
    .join('-')
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '_')}.yaml`;
}

/** Environment -> (path `<Application>/<file>` -> content). Two objects with one file name share the file, one document each. */
export function renderedFiles(objects: readonly RenderedObject[]): Map<string, string> {
  const files = new Map<string, string>();
  for (const object of objects) {
    const path = `${object.application}/${renderedFileName(object)}`;
    const document = `# ${object.source}\n${emitYaml(object.manifest)}`;
    files.set(path, files.has(path) ? `${files.get(path)}---\n${document}` : document);
  }
  return new Map([...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Replaces `out` (or, with `partial`, only the environments' folders in it) with the rendered sets. */
export function writeRenderedTree(out: string, environments: ReadonlyMap<string, readonly RenderedObject[]>, options: { partial?: boolean } = {}): void {
  const staging = `${out.replace(/\/+$/, '')}.staging-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  try {
    if (options.partial && existsSync(out)) {
      for (const entry of readdirSync(out).filter((e) => !environments.has(e))) cpSync(join(out, entry), join(staging, entry), { recursive: true });
    }
    for (const [environment, objects] of environments) {
      for (const [path, content] of renderedFiles(objects)) {
        const file = join(staging, environment, path);
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, content);
      }
    }
    rmSync(out, { recursive: true, force: true });
    renameSync(staging, out);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
