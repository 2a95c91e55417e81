/**
 * Files next to homelab.yaml that settings name (`from: <path relative to the config file>`):
 * the schema leaves a placeholder, and the loader reads every such file once the environments
 * are validated, so the settings carry the file's text. Synth's output then depends on the
 * file's bytes exactly as on inline `content`, and nothing reads the disk after loading (the
 * worker threads that synthesize environments get the text). A file must lie inside the config
 * file's folder (after resolving symbolic links), not be hidden, be a regular UTF-8 file and
 * stay under a size limit: it ends up in a ConfigMap (docs/adr/0033-own-apps-as-services.md).
 */
import { closeSync, constants, fstatSync, openSync, readSync, realpathSync } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { matching } from './primitives';

/**
 * Bytes of one file, and files of one app: together they fit a ConfigMap, which holds at most
 * 1 MiB ("The data stored in a ConfigMap cannot exceed 1 MiB",
 * kubernetes.io/docs/concepts/configuration/configmap) — 12 x 64 KiB is 768 KiB, room left for
 * the keys and metadata. Configuration files are a few kilobytes.
 */
export const CONFIG_FILE_BYTES = 64 * 1024;
export const CONFIG_FILES_PER_CONFIGMAP = 12;

/** A path relative to the config file's folder, without `..` segments. */
export const relativeFile = matching(
  /^(?![/\\])(?!.*(^|[/\\])\.\.([/\\]|$))[^\0]+$/,
  'a path relative to the config file\'s folder, without ".." (e.g. "home-assistant/configuration.yaml")',
  4096,
);

/** The text of a file setting: inline, or read from `from`. */
export interface FileText {
  /** Where it was read from, relative to the config file's folder. @default inline */
  readonly from?: string;
  readonly content: string;
}

/** Marks a placeholder the loader still has to read. */
const UNREAD = Symbol('unread config file');

/** The placeholder for a file the loader reads (`resolveConfigFiles`). */
export function unreadFile(from: string): FileText {
  return { from, content: '', [UNREAD]: true } as FileText;
}

/**
 * Reads every placeholder in the validated settings (in place: the objects are the schema's
 * fresh output) and returns the problems, each `<settings path>.from: ...`.
 */
export function resolveConfigFiles(settings: unknown, configFile: string): string[] {
  const folder = dirname(resolve(configFile));
  const problems: string[] = [];
  const visit = (value: unknown, path: readonly string[]): void => {
    if (Array.isArray(value)) {
      value.forEach((item, i) => visit(item, [...path, String(i)]));
    } else if (value !== null && typeof value === 'object') {
      const record = value as Record<string | symbol, unknown>;
      if (record[UNREAD] === true) {
        delete record[UNREAD];
        try {
          record.content = readBelow(folder, record.from as string);
        } catch (error) {
          if (!(error instanceof FileProblem)) throw error;
          problems.push(`${[...path, 'from'].join('.')}: ${error.message}`);
        }
        return;
      }
      for (const [key, child] of Object.entries(record)) visit(child, [...path, key]);
    }
  };
  visit(settings, []);
  return problems;
}

class FileProblem extends Error {}

/** The text of `from`, which must resolve (symbolic links followed) to a regular file inside `folder`. */
function readBelow(folder: string, from: string): string {
  let real: string;
  try {
    real = realpathSync(resolve(folder, from));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new FileProblem(`cannot read "${from}" next to the config file (${code === 'ENOENT' ? 'no such file' : (code ?? (error as Error).message)})`);
  }
  const inside = relative(realpathSync(folder), real);
  if (inside.split(sep)[0] === '..' || isAbsolute(inside)) {
    throw new FileProblem(`expected a file inside the config file's folder, received "${from}", which leads outside it`);
  }
  // Hidden files and folders are where credentials live (.env, .git/config, .kube/config): the
  // text would be committed in a ConfigMap.
  if ([...from.split(/[/\\]/), ...inside.split(sep)].some((segment) => segment.startsWith('.') && segment !== '.')) {
    throw new FileProblem(`expected a file that is not hidden (no name starting with "."), received "${from}": hidden files hold credentials, and the file is committed in a ConfigMap`);
  }
  let fd: number;
  try {
    // Without blocking: opening a FIFO for reading would wait for a writer; it is then refused as not a regular file.
    fd = openSync(real, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw new FileProblem(`cannot read "${from}" next to the config file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new FileProblem(`expected a regular file, received "${from}"`);
    // At most one byte more than the limit is read, whatever the size says (a file that grows).
    const bytes = Buffer.alloc(CONFIG_FILE_BYTES + 1);
    let total = 0;
    for (;;) {
      const read = readSync(fd, bytes, total, bytes.length - total, null);
      total += read;
      if (read === 0 || total === bytes.length) break;
    }
    if (total > CONFIG_FILE_BYTES) throw new FileProblem(`expected a file of at most ${CONFIG_FILE_BYTES / 1024} KiB, received "${from}" (${stat.size} bytes)`);
    const text = bytes.subarray(0, total);
    if (!isUtf8(text)) throw new FileProblem(`expected a UTF-8 text file, received "${from}" (a ConfigMap's data is text)`);
    return text.toString('utf8');
  } finally {
    closeSync(fd);
  }
}
