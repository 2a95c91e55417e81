/**
 * Which paths synth may replace. It replaces the output directory as a whole (stale files
 * vanish with the old tree), so it must never be pointed at a directory that holds anything
 * else: it writes only into a directory that is missing, empty, or an output tree it wrote
 * before — every regular file in it a `.yaml` file starting with the generated header — and
 * replaces a document (docs/platform.md, docs/disaster-recovery.md) only where there is none or one it generated (its
 * header). Symbolic links are never followed: as the output directory or a document they are
 * refused; inside the output they are dropped with the old tree (lib/output/writer.ts).
 */
import { closeSync, constants, lstatSync, openSync, readSync, Stats } from 'node:fs';
import { basename, parse, resolve, sep } from 'node:path';
import { fileSystemFailure, UserError } from '../util/errors';
import { GENERATED_HEADER } from './synthesize';

/** A file generated beside the output directory and replaced together with it (docs/platform.md, docs/disaster-recovery.md). */
export interface GeneratedDocument {
  readonly path: string;
  readonly content: string;
  /** The line every version of it starts with: a file at `path` is replaced only if it starts with it too. */
  readonly header: string;
  /** The command-line option that names `path`, for the errors. @default '--docs' */
  readonly option?: string;
}

/** Refuses, naming each path, an output directory or document that synth must not replace; reads, never writes. */
export function checkOutputPaths(outdir: string, documents: readonly Omit<GeneratedDocument, 'content'>[]): void {
  const problems = [...outputDirectoryProblems(outdir), ...documents.flatMap((document) => documentProblems(document, outdir)), ...sharedPaths(documents)];
  if (problems.length > 0) throw new UserError(problems);
}

/** Whether a file in the output directory is one synth wrote: a `.yaml` file that starts with the generated header. */
export function isGeneratedOutputFile(path: string): boolean {
  return path.endsWith('.yaml') && startsWith(path, GENERATED_HEADER);
}

/** The error for a file in the output directory that synth did not write. */
export function foreignOutput(outdir: string, path: string, reason: string): UserError {
  return new UserError([
    `${outdir}: ${path} ${reason}; synth replaces the whole output directory, so it writes only into a missing or empty directory or one it wrote before: move the file away or choose another --out`,
  ]);
}

/** A file not written by synth, for foreignOutput. */
export const NOT_GENERATED = `was not written by synth (it is not a .yaml file starting with "${GENERATED_HEADER.trim().slice(0, 32)}...")`;

function outputDirectoryProblems(outdir: string): string[] {
  const absolute = resolve(outdir);
  const ownDirectory = 'synth replaces the whole output directory, so give it a directory of its own (--out)';
  if (absolute === parse(absolute).root) return [`${outdir}: the output directory is the root directory; ${ownDirectory}`];
  if (contains(absolute, process.cwd())) return [`${outdir}: the output directory holds the working directory; ${ownDirectory}`];
  const stats = lstat(outdir);
  if (stats === undefined || stats.isDirectory()) return [];
  if (stats.isSymbolicLink()) return [`${outdir}: the output directory is a symbolic link; synth replaces the directory itself, so name the real one (--out)`];
  return [`${outdir}: the output directory is not a directory (--out)`];
}

function documentProblems(document: Omit<GeneratedDocument, 'content'>, outdir: string): string[] {
  const { path, header, option = '--docs' } = document;
  if (contains(resolve(outdir), resolve(path))) return [`${path}: the document is inside the output directory ${outdir}, which synth replaces as a whole (${option})`];
  const stats = lstat(path);
  if (stats === undefined) return [];
  if (stats.isSymbolicLink()) return [`${path}: the document is a symbolic link; synth replaces the file itself, so name the real one (${option})`];
  if (stats.isDirectory()) return [`${path}: the document is a directory; ${option} names the file to write, e.g. docs/${basename(path)}`];
  if (!stats.isFile()) return [`${path}: the document is not a regular file (${option})`];
  if (!startsWith(path, header)) return [`${path}: was not written by synth (it does not start with "${header.trim()}"): move it away or choose another ${option}`];
  return [];
}

/** Two documents named as one file: one would overwrite the other. */
function sharedPaths(documents: readonly Omit<GeneratedDocument, 'content'>[]): string[] {
  return documents.flatMap((document, i) => {
    const first = documents.findIndex((other) => resolve(other.path) === resolve(document.path));
    const { option = '--docs' } = document;
    return first < i ? [`${document.path}: ${option} names the same file as ${documents[first].option ?? '--docs'}; give each document its own`] : [];
  });
}

/** Whether `inner` is `outer` or inside it (absolute paths). */
export function contains(outer: string, inner: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith(sep) ? outer : `${outer}${sep}`);
}

/** The path's own status (a link is not followed); undefined if nothing is there. */
function lstat(path: string): Stats | undefined {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch (error) {
    // ENOTDIR (a file where a folder of the path should be), EACCES ...
    throw fileSystemFailure(error, `${path}: cannot check it`);
  }
}

/** Whether the file (never a link's target) starts with `prefix`; reads only that much. */
function startsWith(path: string, prefix: string): boolean {
  const expected = Buffer.from(prefix, 'utf8');
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    throw fileSystemFailure(error, `${path}: cannot read it`);
  }
  try {
    const start = Buffer.alloc(expected.length);
    return readSync(fd, start, 0, expected.length, 0) === expected.length && start.equals(expected);
  } finally {
    closeSync(fd);
  }
}
