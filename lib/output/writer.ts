/**
 * Writes synthesized environments into the output directory in one step: the new tree is
 * built in a staging directory beside it, which then takes its place (atomic-replace.ts:
 * a kill at any instant leaves the old or the new tree, never none or a mix). Stale files
 * vanish with the old tree; if anything fails before the swap, the output is untouched and
 * nothing temporary is left. Documents generated with it (docs/platform.md, docs/disaster-recovery.md) are staged too and
 * replaced right after it, so they never describe anything but the output beside them.
 *
 * Nothing is written before the paths are checked (output-guard.ts): only a missing or empty
 * directory or an output tree synth wrote before is replaced. Symbolic links in the output
 * are never followed and never kept.
 *
 * Files whose content is unchanged are hard-linked from the current output instead of
 * written: creating an inode is what costs on many filesystems (~1 ms a file on our CI
 * machines against ~0.02 ms for a link), and most files are unchanged from one synth to
 * the next.
 */
import { existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileSystemFailure } from '../util/errors';
import { OutputReplacement, recoverInterruptedWrites } from './atomic-replace';
import { checkOutputPaths, foreignOutput, GeneratedDocument, isGeneratedOutputFile, isOutputFilePath, NOT_GENERATED } from './output-guard';
import type { SynthesizedEnvironment } from './synthesize';
import { testStep } from './test-faults';

export interface WriteOptions {
  /** The output directory, e.g. `k8s`. */
  readonly outdir: string;
  /**
   * Replace only the folders of the given environments and keep everything else in the
   * output directory (`--env prod`). @default false: the whole directory is replaced
   */
  readonly partial?: boolean;
  /** Files outside the output directory, replaced together with it. @default none */
  readonly documents?: readonly GeneratedDocument[];
  /** Environments whose folder was found to hold exactly their files (see folderMatches), so not compared again. @default none */
  readonly unchanged?: ReadonlySet<string>;
}

type Environment = Pick<SynthesizedEnvironment, 'environment' | 'files'>;

/** The output directory as given, without a trailing slash (but `/` stays `/`). */
export function outputDirectory(path: string): string {
  return path.replace(/(?<=.)\/+$/, '');
}

/**
 * What every synth does before anything else, --check included: refuse paths it must not
 * replace, and finish or clean up what a killed run left.
 */
export function prepareOutput(outdir: string, documents: readonly Omit<GeneratedDocument, 'content'>[]): void {
  checkOutputPaths(outdir, documents);
  recoverInterruptedWrites(outdir);
}

export function writeOutput(environments: readonly Environment[], options: WriteOptions): void {
  const outdir = outputDirectory(options.outdir);
  const documents = options.documents ?? [];
  prepareOutput(outdir, documents);
  const current = inspectOutput(outdir, environments, options);
  const changedDocuments = documents.filter((document) => !sameContent(document.path, document.content));
  // The usual synth after an edit that changed nothing (or a second synth): nothing to replace.
  if (current.upToDate && changedDocuments.length === 0) return;
  let replacement: OutputReplacement;
  try {
    replacement = OutputReplacement.begin(
      outdir,
      changedDocuments.map((document) => document.path),
    );
  } catch (error) {
    throw fileSystemFailure(error, `${outdir}: cannot write the output`);
  }
  try {
    stageTree(replacement.staging, outdir, environments, current);
    for (const document of changedDocuments) replacement.stageDocument(document.path, document.content);
  } catch (error) {
    try {
      replacement.abandon();
    } catch {
      // What could not be removed now is removed by the next run (recoverInterruptedWrites).
    }
    throw fileSystemFailure(error, `${outdir}: cannot write the output`);
  }
  try {
    replacement.commit();
  } catch (error) {
    throw fileSystemFailure(error, `${outdir}: cannot replace the output`);
  }
}

/** What the output directory holds now, compared with the new tree. */
interface CurrentOutput {
  /** It holds exactly the new tree (with `partial`, the new environments' folders) and nothing else. */
  readonly upToDate: boolean;
  /** `<env>/<path>` of the regular files that already hold their new content: linked, not written. */
  readonly unchanged: ReadonlySet<string>;
  /** With `partial`, the files of the environments left as they are: linked into the new tree. */
  readonly carried: readonly string[];
}

/**
 * One walk over the output directory that never follows a link: which files are unchanged,
 * and whether it is an output tree synth wrote (else a UserError naming the first foreign file).
 */
function inspectOutput(outdir: string, environments: readonly Environment[], options: WriteOptions): CurrentOutput {
  const expected = new Map(environments.map((env) => [env.environment, env.files]));
  const unchanged = new Set<string>();
  const carried: string[] = [];
  // Anything the new tree will not hold as it is now: stale files, links.
  let differs = false;
  const visit = (dir: string, prefix: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      const relativePath = `${prefix}${entry.name}`;
      const environment = prefix === '' ? entry.name : prefix.slice(0, prefix.indexOf('/'));
      if (entry.isDirectory()) {
        const files = prefix === '' && options.unchanged?.has(environment) ? expected.get(environment) : undefined;
        // Compared by the thread that synthesized it (environment-workers.ts).
        if (files) for (const file of files.keys()) unchanged.add(`${environment}/${file}`);
        else visit(path, `${relativePath}/`);
      } else if (entry.isSymbolicLink()) {
        differs = true;
      } else if (!entry.isFile()) {
        throw foreignOutput(outdir, path, 'is not a regular file');
      } else {
        const files = prefix === '' ? undefined : expected.get(environment);
        const content = files?.get(relativePath.slice(environment.length + 1));
        if (content !== undefined && sameContent(path, content)) {
          unchanged.add(relativePath);
          continue;
        }
        if (!isGeneratedOutputFile(path)) throw foreignOutput(outdir, path, NOT_GENERATED);
        // A folder of another output tree (--out k8s/prod) holds generated files one level up.
        if (!isOutputFilePath(relativePath)) throw foreignOutput(outdir, path, 'is a file synth wrote, but not at <environment>/<application>/<file> as in an output directory of its own: is --out a folder of one?');
        if (options.partial && !expected.has(environment)) carried.push(relativePath);
        else differs = true;
      }
    }
  };
  const exists = existsSync(outdir);
  try {
    if (exists) visit(outdir, '');
  } catch (error) {
    throw fileSystemFailure(error, `${outdir}: cannot read the output`);
  }
  const total = environments.reduce((n, env) => n + env.files.size, 0);
  return { upToDate: exists && !differs && unchanged.size === total, unchanged, carried };
}

/** The new tree in `staging`: unchanged and carried files linked from the output, the others written (0666 less the umask). */
function stageTree(staging: string, outdir: string, environments: readonly Environment[], current: CurrentOutput): void {
  const created = new Set<string>(['.']);
  const place = (relativePath: string) => {
    const folder = dirname(relativePath);
    if (created.has(folder)) return;
    testStep('mkdir', join(staging, folder));
    mkdirSync(join(staging, folder), { recursive: true });
    created.add(folder);
  };
  const link = (relativePath: string) => {
    place(relativePath);
    testStep('link', join(staging, relativePath));
    linkSync(join(outdir, relativePath), join(staging, relativePath));
  };
  for (const relativePath of current.carried) link(relativePath);
  for (const env of environments) {
    for (const [path, content] of env.files) {
      const relativePath = `${env.environment}/${path}`;
      if (current.unchanged.has(relativePath)) link(relativePath);
      else {
        place(relativePath);
        testStep('write', join(staging, relativePath));
        writeFileSync(join(staging, relativePath), content);
      }
    }
  }
}

/** Whether `dir` holds exactly `files` (path relative to it -> content) as regular files, reading one file at a time. */
export function folderMatches(dir: string, files: ReadonlyMap<string, string>): boolean {
  if (!lstatSync(dir, { throwIfNoEntry: false })?.isDirectory()) return false;
  let found = 0;
  const matches = (current: string, prefix: string): boolean => {
    let entries;
    try {
      entries = readdirSync(current, { withFileTypes: true });
    } catch {
      return false;
    }
    for (const entry of entries) {
      const path = `${prefix}${entry.name}`;
      if (entry.isDirectory()) {
        if (!matches(join(current, entry.name), `${path}/`)) return false;
      } else {
        // A link is a difference (never followed): the writer replaces it with the file.
        const content = files.get(path);
        if (!entry.isFile() || content === undefined || !sameContent(join(current, entry.name), content)) return false;
        found += 1;
      }
    }
    return true;
  };
  return matches(dir, '') && found === files.size;
}

/** Whether the file holds `content`; callers pass regular files or documents checked by output-guard.ts. */
function sameContent(file: string, content: string): boolean {
  try {
    return readFileSync(file, 'utf8') === content;
  } catch {
    return false;
  }
}
