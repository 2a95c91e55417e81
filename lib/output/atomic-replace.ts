/**
 * Puts a staged output tree and its staged documents in place so that a kill at any instant
 * leaves the output directory and each document as its complete old or its complete new
 * content, and the next run of any command finishes or undoes what a killed run left (ADR 20).
 *
 * A run's temporaries are named after the output directory and the process, so that they
 * can be found and told apart from those of a run still going: beside the output directory
 * `.<out>~synth-<pid>-staging` (the new tree), `-retired` (the old tree, fallback only) and
 * `-journal` (with `-journal.draft` while it is written), and `.<doc>~synth-<pid>-staged`
 * beside each document.
 *
 * 1. The journal is written as `prepared`, listing the documents, before any other temporary.
 * 2. The caller stages the new tree and documents.
 * 3. The journal is rewritten as `committed`, with the identity (device, inode) of the staging
 *    tree: from here on the replacement is finished, by this run or the next.
 * 4. The staging tree and the output directory change places in one step: Linux'
 *    renameat2(RENAME_EXCHANGE). Where that is not available (another OS, a file system that
 *    answers EINVAL, no perl), two renames: the old tree out, the new one in; a kill between
 *    them leaves no output directory until the next run, which completes the swap first.
 * 5. Each staged document is renamed onto its path (atomic per file).
 * 6. The old tree is removed, then the journal.
 *
 * Recovery (recoverInterruptedWrites): a dead run's `committed` journal is finished from
 * step 4 on (the output directory carrying the staging tree's identity tells that step 4 was
 * done); anything else it left is removed. Journals are written to a draft and renamed, so
 * they are whole. The guarantee is against a killed process; surviving a power cut would also
 * need every file synced to disk, which costs more than a synth.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileSystemFailure, UserError } from '../util/errors';
import { isRunning } from '../util/processes';
import { testStep } from './test-faults';

/** The temporaries of one run (its process id) for one output directory. */
class Temporaries {
  readonly parent: string;
  readonly staging: string;
  readonly retired: string;
  readonly journal: string;
  readonly journalDraft: string;

  constructor(
    readonly outdir: string,
    readonly pid: number,
  ) {
    this.parent = dirname(resolve(outdir));
    const prefix = join(this.parent, `${temporaryPrefix(outdir)}${pid}-`);
    this.staging = `${prefix}staging`;
    this.retired = `${prefix}retired`;
    this.journal = `${prefix}journal`;
    this.journalDraft = `${this.journal}.draft`;
  }

  /** Where a document is staged: beside it, so that renaming it into place is one atomic step. */
  staged(document: string): string {
    return join(dirname(resolve(document)), `.${basename(document)}~synth-${this.pid}-staged`);
  }
}

/** What a journal records (documents relative to the output directory's parent, so that the checkout may move). */
interface Journal {
  readonly phase: 'prepared' | 'committed';
  readonly documents: readonly string[];
  /** The staging tree's `<device>:<inode>` (committed only). */
  readonly staging?: string;
  /**
   * The `<device>:<inode>` of the output directory the staging tree replaces, none if there was
   * none (committed only): recovery swaps only over that tree, never over a newer run's output.
   */
  readonly replaces?: string;
}

/** One replacement of an output directory and its documents: begin, stage, then commit or abandon. */
export class OutputReplacement {
  private readonly temporaries: Temporaries;
  /** The documents, relative to the output directory's parent (as the journal lists them). */
  private readonly documents: readonly string[];
  private committed = false;

  /** Starts a replacement: its journal, then an empty staging directory (ordinary modes: 0777 less the umask). */
  static begin(outdir: string, documents: readonly string[]): OutputReplacement {
    const replacement = new OutputReplacement(outdir, documents);
    const { temporaries } = replacement;
    if (!existsSync(temporaries.parent)) {
      testStep('mkdir', temporaries.parent);
      mkdirSync(temporaries.parent, { recursive: true });
    }
    try {
      writeJournal(temporaries, { phase: 'prepared', documents: replacement.documents });
      testStep('mkdir', temporaries.staging);
      mkdirSync(temporaries.staging);
    } catch (error) {
      removeTemporaries(temporaries, replacement.documents);
      throw error;
    }
    return replacement;
  }

  private constructor(outdir: string, documents: readonly string[]) {
    this.temporaries = new Temporaries(outdir, process.pid);
    this.documents = documents.map((d) => relative(this.temporaries.parent, resolve(d)));
  }

  /** The directory to build the new output tree in. */
  get staging(): string {
    return this.temporaries.staging;
  }

  /** Writes the new content of one of the documents given to begin, beside it. */
  stageDocument(path: string, content: string): void {
    const staged = this.temporaries.staged(path);
    if (!existsSync(dirname(staged))) {
      testStep('mkdir', dirname(staged));
      mkdirSync(dirname(staged), { recursive: true });
    }
    testStep('write', staged);
    writeFileSync(staged, content);
  }

  /**
   * Puts the staged tree and documents in place. A failure before the output directory is
   * replaced undoes everything (the output is untouched); after it, the next run finishes.
   */
  commit(): void {
    const { temporaries } = this;
    const journal: Journal = {
      phase: 'committed',
      documents: this.documents,
      staging: identity(temporaries.staging),
      replaces: identity(temporaries.outdir),
    };
    try {
      writeJournal(temporaries, journal);
      this.committed = true;
      swapIn(temporaries, journal);
    } catch (error) {
      // The same call failed before the swap (EACCES, EXDEV ...): put the old tree back if it was moved.
      if (!existsSync(temporaries.outdir) && existsSync(temporaries.retired)) renameSync(temporaries.retired, temporaries.outdir);
      removeTemporaries(temporaries, journal.documents);
      throw error;
    }
    completeSwap(temporaries, journal);
  }

  /** Removes what begin and the staging made (before commit; the output was never touched). */
  abandon(): void {
    if (!this.committed) removeTemporaries(this.temporaries, this.documents);
  }
}

/**
 * Finishes or undoes what killed runs left beside the output directory (their documents
 * included, which the journal lists); the temporaries of a run still going are left alone.
 * Every command that reads or writes the output directory calls it first. When nothing was
 * left, this is one directory listing.
 */
export function recoverInterruptedWrites(outdir: string): void {
  const parent = dirname(resolve(outdir));
  const prefix = temporaryPrefix(outdir);
  try {
    let entries: string[];
    try {
      entries = readdirSync(parent);
    } catch (error) {
      // No parent yet (a first synth into a new folder): nothing to recover.
      if (['ENOENT', 'ENOTDIR'].includes((error as NodeJS.ErrnoException).code ?? '')) return;
      throw error;
    }
    const pids = new Set(entries.filter((e) => e.startsWith(prefix)).map((e) => Number(/^(\d+)-/.exec(e.slice(prefix.length))?.[1])));
    for (const pid of [...pids].filter((p) => Number.isSafeInteger(p)).sort((a, b) => a - b)) {
      // This process has written nothing yet: temporaries with its id are a dead run's (the id reused).
      if (pid !== process.pid && isRunning(pid)) continue;
      const temporaries = new Temporaries(outdir, pid);
      const journal = readJournal(temporaries);
      if (journal?.phase === 'committed') completeSwap(temporaries, journal, { swap: true });
      else removeTemporaries(temporaries, journal?.documents ?? []);
    }
  } catch (error) {
    throw fileSystemFailure(error, `${outdir}: cannot finish or clean up after an interrupted synth`);
  }
}

/** `.<out>~synth-`: what every temporary of the output directory starts with (.gitignore has `.*~synth-*`). */
function temporaryPrefix(outdir: string): string {
  return `.${basename(resolve(outdir))}~synth-`;
}

/** Steps 4-6 of a committed journal; with `swap`, step 4 too unless it was done (recovery). */
function completeSwap(temporaries: Temporaries, journal: Journal, options: { swap?: boolean } = {}): void {
  if (options.swap && identity(temporaries.outdir) !== journal.staging) {
    // The output is still the tree this run replaces (or, between two renames, that tree is retired).
    const current = identity(temporaries.outdir) ?? identity(temporaries.retired);
    if (identity(temporaries.staging) !== journal.staging || current !== journal.replaces) {
      // The new tree is gone, or a later run has written the output since: keep the output.
      if (!existsSync(temporaries.outdir) && existsSync(temporaries.retired)) {
        testStep('rename', temporaries.outdir);
        renameSync(temporaries.retired, temporaries.outdir);
      }
      removeTemporaries(temporaries, journal.documents);
      return;
    }
    swapIn(temporaries, journal);
  }
  for (const document of journal.documents) {
    const path = resolve(temporaries.parent, document);
    const staged = temporaries.staged(path);
    if (!existsSync(staged)) continue;
    testStep('rename', path);
    renameSync(staged, path);
  }
  remove(temporaries.staging);
  remove(temporaries.retired);
  remove(temporaries.journal);
}

/** Step 4: the staging tree becomes the output directory (the old tree ends up at the staging or the retired name). */
function swapIn(temporaries: Temporaries, journal: Journal): void {
  const { outdir, staging, retired } = temporaries;
  if (!existsSync(outdir)) {
    testStep('rename', outdir);
    renameSync(staging, outdir);
    return;
  }
  testStep('exchange', outdir);
  // A helper killed after the exchange but before it answered did exchange them.
  if (exchange(staging, outdir) || identity(outdir) === journal.staging) return;
  testStep('rename', retired);
  renameSync(outdir, retired);
  testStep('rename', outdir);
  renameSync(staging, outdir);
}

/**
 * renameat2(2)'s number per architecture (Node's `process.arch`), from the kernel's syscall
 * tables: arch/x86/entry/syscalls/syscall_64.tbl (316) and syscall_32.tbl (353),
 * arch/arm/tools/syscall.tbl (382), and include/uapi/asm-generic/unistd.h (`__NR_renameat2
 * 276`), which arm64, riscv64 and loongarch64 use. Others fall back to two renames.
 */
const RENAMEAT2: Readonly<Partial<Record<string, number>>> = { x64: 316, ia32: 353, arm: 382, arm64: 276, riscv64: 276, loong64: 276 };
/** From include/uapi/linux/fcntl.h (AT_FDCWD) and include/uapi/linux/fs.h (RENAME_EXCHANGE). */
const AT_FDCWD = -100;
const RENAME_EXCHANGE = 2;

/**
 * Exchanges two directories atomically: renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE),
 * which Node does not offer, called through perl's `syscall` (on every Linux and macOS; about
 * 5 ms) rather than native code. False if it could not: not Linux, no perl, or a file system
 * without RENAME_EXCHANGE (EINVAL).
 */
function exchange(a: string, b: string): boolean {
  const number = process.platform === 'linux' ? RENAMEAT2[process.arch] : undefined;
  if (number === undefined) return false;
  // Paths start with "/", so perl passes them as strings (pointers), the constants as integers.
  const script = `exit(syscall(${number}, ${AT_FDCWD}, $ARGV[0], ${AT_FDCWD}, $ARGV[1], ${RENAME_EXCHANGE}) == 0 ? 0 : 1)`;
  const result = spawnSync('perl', ['-e', script, resolve(a), resolve(b)], { stdio: 'ignore', env: { PATH: process.env.PATH ?? '' } });
  return result.status === 0;
}

function writeJournal(temporaries: Temporaries, journal: Journal): void {
  testStep('write', temporaries.journalDraft);
  writeFileSync(temporaries.journalDraft, `${JSON.stringify(journal)}\n`);
  testStep('rename', temporaries.journal);
  renameSync(temporaries.journalDraft, temporaries.journal);
}

function readJournal(temporaries: Temporaries): Journal | undefined {
  let text: string;
  try {
    text = readFileSync(temporaries.journal, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const journal = JSON.parse(text) as Journal;
    if (['prepared', 'committed'].includes(journal.phase) && Array.isArray(journal.documents)) return journal;
  } catch {
    // Reported below: a journal is written whole, so this one is not ours.
  }
  throw new UserError([`${temporaries.journal}: not a journal of an interrupted synth; remove it and run synth again`]);
}

/** Every temporary of a run, the journal last (it lists the staged documents). */
function removeTemporaries(temporaries: Temporaries, documents: readonly string[]): void {
  remove(temporaries.staging);
  remove(temporaries.retired);
  for (const document of documents) remove(temporaries.staged(resolve(temporaries.parent, document)));
  remove(temporaries.journalDraft);
  remove(temporaries.journal);
}

function remove(path: string): void {
  if (lstatSync(path, { throwIfNoEntry: false }) === undefined) return;
  testStep('remove', path);
  rmSync(path, { recursive: true, force: true });
}

/** `<device>:<inode>` of the path itself, or undefined if nothing is there. */
function identity(path: string): string | undefined {
  const stats = lstatSync(path, { bigint: true, throwIfNoEntry: false });
  return stats && `${stats.dev}:${stats.ino}`;
}
