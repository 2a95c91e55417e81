/**
 * The output as a map `<env>/<folder>/<file>` -> content, from three places: a fresh synth
 * (in memory), the output directory on disk, and a git revision's tree.
 */
import { execFileSync } from 'node:child_process';
import { hash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { UserError } from '../util/errors';
import { inBackground } from '../util/processes';
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

export interface GitTreeOptions {
  /** Where git runs and outdir is relative to. @default the process's working directory */
  readonly cwd?: string;
  /** Only these environments' folders. @default all of outdir */
  readonly environments?: readonly string[];
}

export interface CommittedTree<T> {
  /** The commit the revision names. */
  readonly commit: string;
  /** Its files under outdir. */
  readonly tree: Map<string, string>;
  /** What `work` returned. */
  readonly result: T;
}

/**
 * Resolves a revision (`$1`: `HEAD`, `main`, `origin/main~2`, a hash) and lists the files under
 * the paths after it in that commit: the commit and a NUL, then `git ls-tree -z`'s listing. One
 * shell, so the listing is of the commit printed even if a branch moves meanwhile. A revision
 * that names no commit: exit status 3, after git's reason (asked again: the warnings of a
 * resolution that succeeds, an ambiguous name, are not the listing's errors); no git: 127.
 * Replacement objects (`git replace`) are not applied: the files are read partly as the objects
 * listed and partly by their content, which must be the same objects.
 */
const LIST_COMMITTED = [
  'commit=$(git --no-replace-objects rev-parse --verify --end-of-options "$1^{commit}" 2>/dev/null) || {',
  '  status=$?',
  '  git --no-replace-objects rev-parse --verify --end-of-options "$1^{commit}" >/dev/null',
  '  [ "$status" -eq 127 ] && exit 127',
  '  exit 3',
  '}',
  'shift',
  "printf '%s\\0' \"$commit\"",
  'exec git --no-replace-objects ls-tree -r -z "$commit" -- "$@"',
].join('\n');
const NOT_A_COMMIT = 3;
const NO_GIT = 127;

/**
 * The files under outdir (relative to cwd) in the commit a revision names, read around `work`
 * (`npm run diff` synthesizes), which must return the contents the commit likely holds.
 * git resolves the revision and lists the files while `work` runs, off this thread's path (run
 * before it, `rev-parse` and `ls-tree` took ~25 ms on a slow 2-core machine, half of it forking
 * this large process twice), writing into a file where it can (inBackground), so it does not
 * wait for this thread to drain a pipe. Then a file whose git object is the blob of the content
 * `work` gave for its path is not read from git; one `git cat-file --batch` reads the others (a
 * git process per file would dominate the run time): a diff after a small change reads a few
 * files instead of the example's 1 789, which cost ~30 ms of wall time and ~70 ms of CPU. If
 * `work` throws, so does this, once git has ended: its error comes before git's.
 */
export async function readGitTreeWhile<T extends OutputTree>(revision: string, outdir: string, options: GitTreeOptions, work: () => T): Promise<CommittedTree<T>> {
  // ls-tree takes and prints paths relative to the working directory.
  const cwd = options.cwd ?? process.cwd();
  const relativeOutdir = relative(cwd, resolve(cwd, outdir)).split(sep).join('/');
  const prefix = relativeOutdir === '' ? '' : `${relativeOutdir}/`;
  const shown = prefix || './';
  const roots = options.environments?.map((env) => `${prefix}${env}`) ?? (prefix === '' ? [] : [prefix]);
  const listing = inBackground('sh', ['-c', LIST_COMMITTED, 'sh', revision, ...roots], { cwd, name: 'git' });
  let expected: T;
  try {
    expected = work();
  } catch (error) {
    // git's files are closed once it has ended; work's error is the one to report.
    await listing.catch(() => undefined);
    throw error;
  }
  const { status, signal, stdout, stderr, error } = await listing;
  if (error) throw new UserError([`cannot start git in ${cwd} (${error.message})`]);
  if (status === NO_GIT) throw new UserError([`cannot run git: ${firstLine(stderr) || 'not found'}`]);
  if (status === NOT_A_COMMIT) throw new UserError([`--base ${revision}: not a commit in this git repository${gitReason(stderr)}`]);
  if (status !== 0) throw new UserError([`cannot list ${shown} in ${revision}${signal ? ` (git ended by ${signal})` : gitReason(stderr)}`]);
  const commitEnd = stdout.indexOf(0);
  const commit = stdout.subarray(0, commitEnd).toString('utf8');
  const tree = new Map<string, string>();
  const unread: { path: string; object: string }[] = [];
  for (const line of stdout.subarray(commitEnd + 1).toString('utf8').split('\0')) {
    if (line.length === 0) continue;
    // "<mode> <type> <object>\t<path>"; a path may hold a tab.
    const tab = line.indexOf('\t');
    const [, type, object] = line.slice(0, tab).split(' ');
    if (type !== 'blob') continue;
    const path = line.slice(tab + 1 + prefix.length);
    const content = expected.get(path);
    if (content !== undefined && blobObject(content, object.length) === object) tree.set(path, content);
    else unread.push({ path, object });
  }
  if (unread.length > 0) {
    const failure = `cannot read ${shown} in ${revision}`;
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
  return { commit, tree: sortedTree(tree), result: expected };
}

/**
 * The git object id of a blob holding `content` as UTF-8, the bytes a synth writes (a lone
 * surrogate among them as U+FFFD), in the repository's hash (SHA-1, or SHA-256 for ids of 64
 * digits).
 */
function blobObject(content: string, idLength: number): string {
  return hash(idLength === 64 ? 'sha256' : 'sha1', `blob ${Buffer.byteLength(content)}\0${content}`);
}

function gitReason(stderr: string): string {
  const reason = firstLine(stderr);
  return reason ? ` (git: ${reason.replace(/^fatal: /, '')})` : '';
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0];
}

/** A git command's output, replacement objects not applied (see LIST_COMMITTED). */
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
