/**
 * The output as a map `<env>/<folder>/<file>` -> content, from three places: a fresh synth
 * (in memory), the output directory on disk, and a git revision's tree.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { UserError } from '../util/errors';
import { byCodeUnits } from '../util/text-order';
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
  // Relative paths are built as the walk descends: path.relative per file took ~5 of the ~28 ms a read of the example's k8s/ took.
  const walk = (dir: string, prefix: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      const relativePath = `${prefix}${entry.name}`;
      if (entry.isDirectory()) walk(path, `${relativePath}/`);
      else if (entry.isFile()) tree.set(relativePath, readFileSync(path, 'utf8'));
      else others.push(relativePath);
    }
  };
  for (const root of environments ?? ['']) {
    // An environment's folder that is a link is not read through either.
    if (root !== '' && lstatSync(join(outdir, root), { throwIfNoEntry: false })?.isSymbolicLink()) others.push(root);
    else walk(join(outdir, root), root === '' ? '' : `${root}/`);
  }
  return { files: sortedTree(tree), others: others.sort() };
}

/** The commit a revision names (`HEAD`, `main`, `origin/main~2`, a hash); a UserError if none. */
export function gitCommit(revision: string, cwd?: string): string {
  return git(['rev-parse', '--verify', '--end-of-options', `${revision}^{commit}`], cwd, `--base ${revision}: not a commit in this git repository`)
    .toString('utf8')
    .trim();
}

export interface GitTreeOptions {
  /** Where git runs and outdir is relative to. @default the process's working directory */
  readonly cwd?: string;
  /** Only these environments' folders. @default all of outdir */
  readonly environments?: readonly string[];
  /**
   * Contents the commit likely holds (`npm run diff`: the fresh synth): a file whose git object
   * is the blob of the content given for its path is not read from git. @default none
   */
  readonly expected?: OutputTree;
}

/**
 * The files under outdir (relative to cwd) in a commit. `git ls-tree` lists them with their
 * objects, and one `git cat-file --batch` reads the ones `expected` does not hold (a git
 * process per file would dominate the run time): a diff after a small change reads a few files
 * instead of all of them, which cost it ~30 ms of wall time and ~70 ms of CPU over the
 * example's 1 789 files.
 */
export function readGitTree(commit: string, outdir: string, options: GitTreeOptions = {}): Map<string, string> {
  // ls-tree takes and prints paths relative to the working directory.
  const cwd = options.cwd ?? process.cwd();
  const prefix = `${relative(cwd, resolve(cwd, outdir)).split(sep).join('/')}/`;
  const roots = (options.environments ?? ['']).map((env) => `${prefix}${env}`);
  const tree = new Map<string, string>();
  const unread: { path: string; object: string }[] = [];
  const listing = git(['ls-tree', '-r', '-z', commit, '--', ...roots], cwd, `cannot list ${prefix} in ${commit}`).toString('utf8');
  for (const line of listing.split('\0')) {
    if (line.length === 0) continue;
    // "<mode> <type> <object>\t<path>"; a path may hold a tab.
    const tab = line.indexOf('\t');
    const [, type, object] = line.slice(0, tab).split(' ');
    if (type !== 'blob') continue;
    const path = line.slice(tab + 1 + prefix.length);
    const content = options.expected?.get(path);
    if (content !== undefined && blobObject(content, object.length) === object) tree.set(path, content);
    else unread.push({ path, object });
  }
  if (unread.length > 0) {
    const failure = `cannot read ${prefix} in ${commit}`;
    const answers = git(['cat-file', '--batch'], cwd, failure, unread.map((entry) => `${entry.object}\n`).join(''));
    let offset = 0;
    for (const { path, object } of unread) {
      // Each answer is "<object> blob <size>\n<content>\n", the size in bytes, or "<object> missing\n".
      const headerEnd = answers.indexOf(0x0a, offset);
      const [, type, size] = answers.subarray(offset, headerEnd).toString('utf8').split(' ');
      if (type !== 'blob') throw new UserError([`${failure} (git: ${object}, ${prefix}${path}, is ${type ?? 'not answered'})`]);
      tree.set(path, answers.subarray(headerEnd + 1, headerEnd + 1 + Number(size)).toString('utf8'));
      offset = headerEnd + 1 + Number(size) + 1;
    }
  }
  return sortedTree(tree);
}

/**
 * The git object id of a blob holding `content` as UTF-8, the bytes a synth writes (a lone
 * surrogate among them as U+FFFD), in the repository's hash (SHA-1, or SHA-256 for ids of 64
 * digits).
 */
function blobObject(content: string, idLength: number): string {
  return createHash(idLength === 64 ? 'sha256' : 'sha1')
    .update(`blob ${Buffer.byteLength(content)}\0`)
    .update(content, 'utf8')
    .digest('hex');
}

function gitReason(stderr: string): string {
  const reason = stderr.trim().split('\n')[0];
  return reason ? ` (git: ${reason.replace(/^fatal: /, '')})` : '';
}

/**
 * A git command's output. Replacement objects (`git replace`) are not applied: readGitTree reads
 * some files as the objects ls-tree lists and the others by their content, which must be the
 * same objects.
 */
function git(args: string[], cwd: string | undefined, failure: string, input?: string): Buffer {
  try {
    return execFileSync('git', ['--no-replace-objects', ...args], { cwd, input, maxBuffer: 1 << 30, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (error) {
    // Output past maxBuffer leaves stderr empty: the error's own message says why.
    throw new UserError([`${failure}${gitReason(String((error as { stderr?: Buffer }).stderr ?? '') || (error as Error).message)}`]);
  }
}

/** The tree with its paths in code-point order (locale-independent, so output is deterministic). */
export function sortedTree(tree: Map<string, string>): Map<string, string> {
  return new Map([...tree].sort(([a], [b]) => byCodeUnits(a, b)));
}

/** Paths added, removed or changed from `base` to `head`, in code-point order. */
export function changedFiles(base: OutputTree, head: OutputTree): FileChange[] {
  const changes: FileChange[] = [];
  for (const [path, content] of head) {
    const before = base.get(path);
    if (before === undefined) changes.push({ path, kind: 'added' });
    else if (before !== content) changes.push({ path, kind: 'changed' });
  }
  for (const path of base.keys()) if (!head.has(path)) changes.push({ path, kind: 'removed' });
  return changes.sort((a, b) => byCodeUnits(a.path, b.path));
}

export interface FileChange {
  readonly path: string;
  readonly kind: 'added' | 'removed' | 'changed';
}
