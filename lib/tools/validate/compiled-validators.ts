/**
 * ajv's compiled validators kept on disk as standalone code (ajv/dist/standalone), so that a
 * test worker or a command compiles each schema once per change of the schema instead of once
 * per process: compiling the Kubernetes and CRD schemas took ~1.5 s of CPU in every test worker,
 * loading the compiled code takes a tenth of that (ADR 31).
 *
 * Each validator is one module in the git-ignored `.cache/validators/`, named by the SHA-256 of
 * everything its code is generated from: the versions of ajv and ajv-formats, the options, the
 * source of the module that hands the schemas to ajv, and the schemas as ajv compiled them (after
 * the validators' own transforms, so a change of those transforms is a new name too). A missing
 * or unreadable module is compiled again; writes are atomic (temporary file, then rename), so a
 * process never reads another's half-written module; a read-only checkout only loses the cache.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import Ajv, { ValidateFunction } from 'ajv';
import standaloneCode from 'ajv/dist/standalone';
import { projectRoot } from '../../util/project';

/** Where the compiled validators are kept. */
export const VALIDATOR_CACHE_DIR = join(projectRoot(), '.cache', 'validators');

/** Resolves what the generated code requires (ajv's runtime, ajv-formats) from the project's node_modules. */
const requireFromProject = createRequire(join(projectRoot(), 'package.json'));

/** The installed version of a package the generated code depends on ('' when it is not installed). */
function versionOf(name: string): string {
  try {
    return (requireFromProject(`${name}/package.json`) as { version: string }).version;
  } catch {
    return '';
  }
}

let libraryVersions: string | undefined;

/** The cache's name for the code generated from `parts` (the schemas and options, as JSON-serializable values). */
export function validatorKey(parts: readonly unknown[]): string {
  // Without them in node_modules the cached code could not load: it is then compiled each time.
  libraryVersions ??= `ajv ${versionOf('ajv')}, ajv-formats ${versionOf('ajv-formats')}`;
  const hash = createHash('sha256').update(libraryVersions);
  for (const part of parts) hash.update('\0').update(typeof part === 'string' ? part : JSON.stringify(part));
  return hash.digest('hex');
}

/**
 * The validator named `key` from the cache, or else `compile()`'s (whose ajv must have been
 * created with `code: { source: true }`), written to the cache for the next process.
 */
export function cachedValidator(key: string, compile: () => { ajv: Ajv; validate: ValidateFunction }, cacheDir: string = VALIDATOR_CACHE_DIR): ValidateFunction {
  const file = join(cacheDir, `${key}.js`);
  const cached = loadModule(file);
  if (cached) return cached;
  const { ajv, validate } = compile();
  // Per process and thread: two test workers, or two threads of a process, may compile the same one at once.
  const staging = `${file}.${process.pid}-${threadId}.tmp`;
  try {
    mkdirSync(cacheDir, { recursive: true });
    writeFileSync(staging, standaloneCode(ajv, validate));
    renameSync(staging, file);
  } catch {
    // A read-only checkout only loses the cache.
    rmSync(staging, { force: true });
  }
  return validate;
}

/** Evaluates a cached module as CommonJS, requiring from the project; undefined if it is missing or broken. */
function loadModule(file: string): ValidateFunction | undefined {
  let code: string;
  try {
    code = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const module = { exports: {} as unknown };
    new Function('module', 'exports', 'require', code)(module, module.exports, requireFromProject);
    return typeof module.exports === 'function' ? (module.exports as ValidateFunction) : undefined;
  } catch {
    return undefined;
  }
}
