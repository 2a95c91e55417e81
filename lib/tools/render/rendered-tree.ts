/**
 * The rendered set on disk: `<out>/<env>/<Application>/<kind>-<namespace>-<name>.yaml`, one
 * object a file (a cluster-scoped object has no namespace part), so that the rendered sets of
 * two revisions diff object by object with the same tools as k8s/ (lib/output/diff.ts). The
 * folder is scratch output (git-ignored): it is replaced, not merged.
 */
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { contains } from '../../output/output-guard';
import { fileSystemFailure, UserError } from '../../util/errors';
import { emitYaml } from '../../util/yaml-emitter';
import { byCodeUnits } from '../../util/text-order';
import type { RenderedObject } from './render';

/** The file of an object inside its Application's folder. */
function renderedFileName(object: RenderedObject): string {
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
  return new Map([...files].sort(([a], [b]) => byCodeUnits(a, b)));
}

/** Marks a folder as a rendered tree: only such a folder (or a missing or empty one) is replaced. */
export const RENDERED_MARKER = '.homelab-rendered';

/**
 * Why `out` must not be replaced by a rendered tree, if it must not: the root or a folder holding
 * the working directory, the synthesized output or a folder inside it, or a folder with files that
 * is not a rendered tree.
 */
export function renderedTreeRefusal(out: string, from: string): string | undefined {
  const target = resolve(out);
  if (contains(target, process.cwd())) return `${out}: holds the working directory; --out names a folder of its own, e.g. .rendered`;
  if (contains(target, resolve(from)) || contains(resolve(from), target)) return `${out}: is, holds or is inside the synthesized output ${from}; choose another --out`;
  const stats = lstatSync(target, { throwIfNoEntry: false });
  if (!stats) return undefined;
  if (!stats.isDirectory()) return `${out}: is not a folder (${stats.isSymbolicLink() ? 'a symbolic link' : 'a file'}); choose another --out`;
  if (readdirSync(target).length > 0 && !existsSync(join(target, RENDERED_MARKER))) return `${out}: holds files that render did not write (no ${RENDERED_MARKER}); move them away or choose another --out`;
  return undefined;
}

/** Replaces `out` (or, with `partial`, only the environments' folders in it) with the rendered sets. */
export function writeRenderedTree(out: string, from: string, environments: ReadonlyMap<string, readonly RenderedObject[]>, options: { partial?: boolean } = {}): void {
  const refusal = renderedTreeRefusal(out, from);
  if (refusal) throw new UserError([refusal]);
  const staging = `${out.replace(/\/+$/, '')}.staging-${process.pid}`;
  try {
    writeStaged(out, staging, environments, options);
  } catch (error) {
    throw fileSystemFailure(error, `${out}: cannot write the rendered objects`);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

function writeStaged(out: string, staging: string, environments: ReadonlyMap<string, readonly RenderedObject[]>, options: { partial?: boolean }): void {
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  writeFileSync(join(staging, RENDERED_MARKER), 'Written by `npm run render`; replaced by the next one.\n');
  if (options.partial && existsSync(out)) {
    for (const entry of readdirSync(out).filter((e) => !environments.has(e) && e !== RENDERED_MARKER)) cpSync(join(out, entry), join(staging, entry), { recursive: true });
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
}
