/**
 * The output as a map `<env>/<folder>/<file>` -> content, from three places: a fresh synth
 * (in memory), the output directory on disk, and a git revision's tree.
 */
import { execFileSync } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { UserError } from '../util/errors';
import type { SynthesizedEnvironment } from './synthesize';

export type OutputTree = ReadonlyMap<string, string>;

export function treeOf(environments: readonly Pick<SynthesizedEnvironment, 'environment' | 'files'>[]): Map<string, string> {
  return new Map(environments.flatMap((env) => [...env.files].map(([path, content]) => [`${env.environment}/${path}`, content] as const)));
}

/** The files under outdir (only the given environments' folders if any); empty if it does not exist. Links are not followed (see readDirectory). */
export function readDirectoryTree(outdir: string, environments?: readonly string[]): Map<string, string> {
  return readDirectory(outdir, environments).files;
}

/**
 * The regular files under outdir (only the given environments' folders if any), and the paths
 * of everything else there: symbolic links, never followed (a link in `k8s/` to a file outside
 * must not pass for the file), and other special files.
 */
export function readDirectory(outdir: string, environments?: readonly string[]): { files: Map<string, string>; others: string[] } {
  const tree = new Map<string, string>();
  const others: string[] = [];
  const walk = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      const relativePath = relative(outdir, path).split(sep).join('/');
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) tree.set(relativePath, readFileSync(path, 'utf8'));
      else others.push(relativePath);
    }
  };
  for (const root of environments ?? ['']) {
    // An environment's folder that is a link is not read through either.
    if (root !== '' && lstatSync(join(outdir, root), { throwIfNoEntry: false })?.isSymbolicLink()) others.push(root);
    else walk(join(outdir, root));
  }
  return { files: sortedTree(tree), others: others.sort() };
}

/** The commit a revision names (`HEAD`, `main`, `origin/main~2`, a hash); a UserError if none. */
export function gitCommit(revision: string, cwd?: string): string {
  return git(['rev-parse', '--verify', '--end-of-options', `${revision}^{commit}`], cwd, `--base ${revision}: not a commit in this git repository`)
    .toString('utf8')
    .trim();
}

/**
 * The files under outdir (relative to cwd) in a commit: `git ls-tree` lists them, one
 * `git cat-file --batch` reads them all (a git process per file would dominate the run time).
 */
export function readGitTree(commit: string, outdir: string, options: { cwd?: string; environments?: readonly string[] } = {}): Map<string, string> {
  // ls-tree takes and prints paths relative to the working directory.
  const cwd = options.cwd ?? process.cwd();
  const prefix = `${relative(cwd, resolve(cwd, outdir)).split(sep).join('/')}/`;
  const roots = (options.environments ?? ['']).map((env) => `${prefix}${env}`);
  const failure = `cannot list ${prefix} in ${commit}`;
  const entries = git(['ls-tree', '-r', '-z', commit, '--', ...roots], cwd, failure)
    .toString('utf8')
    .split('\0')
    .filter((line) => line.length > 0)
    .map((line) => {
      const [meta, path] = line.split('\t');
      const [, type, object] = meta.split(' ');
      return { type, object, path: path.slice(prefix.length) };
    })
    .filter((entry) => entry.type === 'blob');
  const tree = new Map<string, string>();
  if (entries.length === 0) return tree;
  const batch = git(['cat-file', '--batch'], cwd, failure, entries.map((e) => `${e.object}\n`).join(''));
  let offset = 0;
  for (const entry of entries) {
    // Each answer is "<object> blob <size>\n<content>\n", the size in bytes.
    const headerEnd = batch.indexOf(0x0a, offset);
    const size = Number(batch.subarray(offset, headerEnd).toString('utf8').split(' ')[2]);
    tree.set(entry.path, batch.subarray(headerEnd + 1, headerEnd + 1 + size).toString('utf8'));
    offset = headerEnd + 1 + size + 1;
  }
  return sortedTree(tree);
}

function git(args: string[], cwd: string | undefined, failure: string, input?: string): Buffer {
  try {
    return execFileSync('git', args, { cwd, input, maxBuffer: 1 << 30, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (error) {
    const reason = String((error as { stderr?: Buffer }).stderr ?? (error as Error).message).trim().split('\n')[0];
    throw new UserError([`${failure}${reason ? ` (git: ${reason.replace(/^fatal: /, '')})` : ''}`]);
  }
}

/** The tree with its paths in code-point order (locale-independent, so output is deterministic). */
export function sortedTree(tree: Map<string, string>): Map<string, string> {
  return new Map([...tree].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Paths added, removed or changed from `base` to `head`, in code-point order. */
export function changedFiles(base: OutputTree, head: OutputTree): FileChange[] {
  return [...new Set([...base.keys(), ...head.keys()])].sort().flatMap((path): FileChange[] => {
    if (!base.has(path)) return [{ path, kind: 'added' }];
    if (!head.has(path)) return [{ path, kind: 'removed' }];
    return base.get(path) === head.get(path) ? [] : [{ path, kind: 'changed' }];
  });
}

export interface FileChange {
  readonly path: string;
  readonly kind: 'added' | 'removed' | 'changed';
}
