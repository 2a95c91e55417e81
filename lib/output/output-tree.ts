/**
 * The output as a map `<env>/<folder>/<file>` -> content, from three places: a fresh synth
 * (in memory), the output directory on disk, and a git revision's tree.
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, fstatSync, lstatSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { fileSystemFailure, UserError } from '../util/errors';
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
}

/**
 * The files under outdir (relative to cwd) in a commit, read while `work` runs in this thread
 * (`npm run diff` synthesizes meanwhile), and what `work` returned. `git ls-tree` lists them, one
 * `git cat-file --batch` reads them all (a git process per file would dominate the run time),
 * from a file into a file: it never waits for this thread to drain a pipe, and its ~0.1 s runs
 * on another core. The temporary files are gone from the directory before git starts (it reads
 * and writes them open), so none is left when `work` throws or the process is killed.
 */
export async function readGitTreeWhile<T>(commit: string, outdir: string, options: GitTreeOptions, work: () => T): Promise<{ tree: Map<string, string>; result: T }> {
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
  if (entries.length === 0) return { tree: new Map(), result: work() };
  const files = gitAnswerFiles(entries.map((e) => `${e.object}\n`).join(''));
  try {
    const batch = gitInBackground(['cat-file', '--batch'], { cwd, stdin: files.objects, stdout: files.contents });
    let result: T;
    let answer: { status: number | null; stderr: string };
    try {
      result = work();
    } finally {
      // Also when work threw: git is done with the files before they are closed.
      answer = await batch;
    }
    if (answer.status !== 0) throw new UserError([`${failure}${gitReason(answer.stderr)}`]);
    const answers = Buffer.alloc(fstatSync(files.contents).size);
    readSync(files.contents, answers, 0, answers.length, 0);
    const tree = new Map<string, string>();
    let offset = 0;
    for (const entry of entries) {
      // Each answer is "<object> blob <size>\n<content>\n", the size in bytes.
      const headerEnd = answers.indexOf(0x0a, offset);
      const size = Number(answers.subarray(offset, headerEnd).toString('utf8').split(' ')[2]);
      tree.set(entry.path, answers.subarray(headerEnd + 1, headerEnd + 1 + size).toString('utf8'));
      offset = headerEnd + 1 + size + 1;
    }
    return { tree: sortedTree(tree), result };
  } finally {
    closeSync(files.objects);
    closeSync(files.contents);
  }
}

/**
 * Git's question (the objects to read) and a file for its answer, open, their directory already
 * removed: nothing is left behind however the process ends (a Ctrl-C while synthesizing).
 */
function gitAnswerFiles(objectList: string): { objects: number; contents: number } {
  const dir = mkdtempSync(join(tmpdir(), 'homelab-git-'));
  const opened: number[] = [];
  try {
    writeFileSync(join(dir, 'objects'), objectList);
    opened.push(openSync(join(dir, 'objects'), 'r'), openSync(join(dir, 'contents'), 'w+'));
    return { objects: opened[0], contents: opened[1] };
  } catch (error) {
    for (const fd of opened) closeSync(fd);
    throw fileSystemFailure(error, `${dir}: cannot keep git's answer in a temporary file`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** git reading `stdin` from an open file and writing `stdout` into one; its exit status and what it said on stderr. */
function gitInBackground(args: readonly string[], io: { cwd: string; stdin: number; stdout: number }): Promise<{ status: number | null; stderr: string }> {
  const child = spawn('git', args, { cwd: io.cwd, stdio: [io.stdin, io.stdout, 'pipe'] });
  return new Promise((settle) => {
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', (error) => settle({ status: null, stderr: error.message }));
    child.on('close', (status) => settle({ status, stderr }));
  });
}

function gitReason(stderr: string): string {
  const reason = stderr.trim().split('\n')[0];
  return reason ? ` (git: ${reason.replace(/^fatal: /, '')})` : '';
}

function git(args: string[], cwd: string | undefined, failure: string): Buffer {
  try {
    return execFileSync('git', args, { cwd, maxBuffer: 1 << 30, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (error) {
    throw new UserError([`${failure}${gitReason(String((error as { stderr?: Buffer }).stderr ?? (error as Error).message))}`]);
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
