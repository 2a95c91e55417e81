/**
 * How the tests load the project's code: compiled as the bundles compile it (esbuild, CommonJS,
 * strict as tsconfig.json asks, the build plugins' rewrite of the generated L1 classes,
 * bin/build-plugins.cjs), then run by Node.js itself with its compile cache. Vitest runs with
 * its module runner off (vitest.config.mts): the runner asked the main process for every module
 * and compiled each anew, ~0.65 s per worker for the project's ~200 modules; this takes ~0.3 s
 * (ADR 31, twelfth round). Installed in the workers with `--import` and in the main process by
 * the config (the global setup). Plain JavaScript: it runs before any TypeScript can be loaded.
 *
 * - A relative import without a file type from the project's code finds `<path>.ts` or
 *   `<path>/index.ts`, as esbuild does when it bundles.
 * - The project's `.ts` files become CommonJS, as in the bundles; those under test/ become ES
 *   modules, since vitest can only be imported, in which CommonJS' free `__dirname`,
 *   `__filename` and `require` mean what they would there.
 * - The compiled text is kept in .cache/test-modules/<generation>/, named by the SHA-256 of
 *   the path and the source; the generation is the SHA-256 of what else makes it (this file,
 *   esbuild's version, the build plugins, tsconfig.json). Writes are atomic, as two workers may
 *   compile the same file.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import nodeModule, { createRequire } from 'node:module';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const { GENERATED_L1, withLinearFilter } = require('../../bin/build-plugins.cjs');

/** This file, for the workers' `--import` (vitest.config.mts): a URL, which any path can be. */
export const TYPESCRIPT_LOADER_URL = import.meta.url;
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NODE_MODULES = join(ROOT, 'node_modules') + sep;
const TESTS = join(ROOT, 'test') + sep;
const TSCONFIG = readFileSync(join(ROOT, 'tsconfig.json'), 'utf8');
const GENERATION = createHash('sha256')
  .update(readFileSync(fileURLToPath(import.meta.url)))
  .update(require('esbuild/package.json').version)
  .update(readFileSync(join(ROOT, 'bin', 'build-plugins.cjs')))
  .update(TSCONFIG)
  .digest('hex')
  .slice(0, 16);
const MODULES_CACHE = join(ROOT, '.cache', 'test-modules');
/** Where Node.js keeps the V8 code of what it compiled; written by test/setup/compile-cache.ts. */
const COMPILE_CACHE = join(ROOT, '.cache', 'node-compile');
/**
 * Entries past which a cache folder is emptied at the start of a run. The compile cache gains
 * ~195 entries a run that are never read again (vitest imports each test and setup file under a
 * new URL, and Node.js keys its cache by URL); a run loads ~240 compiled texts and ~1 060
 * compiled codes. Emptied, each costs one compile of what a run loads (the compile cache ~0.8 s
 * of CPU).
 */
const MAX_CACHE_ENTRIES = 5000;

/** A relative import that names no file type (the project's own leave it out; some names have dots). */
const RELATIVE = /^\.\.?\//;
const FILE_TYPE = /\.(?:[cm]?[jt]s|json|node)$/;
/** Where an ES module under test/ finds CommonJS' `require`. */
const TEST_REQUIRE = "import { createRequire as __createTestRequire } from 'node:module'; const __testRequire = __createTestRequire(import.meta.url);";

const isProjectFile = (path) => path.startsWith(ROOT) && !path.startsWith(NODE_MODULES);

/** The JavaScript of a project's TypeScript file, from the cache or compiled now. */
function compiled(path, asModule) {
  const source = readFileSync(path, 'utf8');
  const key = createHash('sha256').update(path).update('\0').update(source).digest('hex');
  const directory = join(MODULES_CACHE, GENERATION);
  const cached = join(directory, `${key}.${asModule ? 'mjs' : 'cjs'}`);
  try {
    return readFileSync(cached, 'utf8');
  } catch {
    // Not compiled yet, or removed meanwhile by another run's pruning: compiled now.
  }
  const generated = GENERATED_L1.test(path);
  const { code } = require('esbuild').transformSync(generated ? (withLinearFilter(source) ?? source) : source, {
    loader: 'ts',
    format: asModule ? 'esm' : 'cjs',
    platform: 'node',
    target: 'node20',
    tsconfigRaw: TSCONFIG,
    ...(asModule && { define: { __dirname: 'import.meta.dirname', __filename: 'import.meta.filename', require: '__testRequire' }, banner: TEST_REQUIRE }),
    // Failures point at the TypeScript; the generated classes (7 MB) are never where a test fails.
    sourcemap: generated ? false : 'inline',
    sourcefile: path,
  });
  const partial = `${cached}.${process.pid}.tmp`;
  try {
    mkdirSync(directory, { recursive: true });
    writeFileSync(partial, code);
    renameSync(partial, cached);
  } catch {
    // A read-only checkout only loses the cache.
    rmSync(partial, { force: true });
  }
  return code;
}

/**
 * Keeps the caches from growing without end; called by the config in the main process, before
 * any worker starts: other generations' compiled texts go, and so does the compile cache of
 * other Node.js versions; a folder past MAX_CACHE_ENTRIES is emptied (with any partial file a
 * killed worker left). Also removes the module cache of vitest's own runner, unused since the
 * runner is off (it had grown to 1.4 GB here). A folder is renamed before it is removed, so a
 * run still using it (another vitest process) finds it gone rather than half-emptied; a failure
 * (a read-only checkout, such a race) only leaves the folder for the next run.
 */
export function pruneTestCaches() {
  const entries = (path) => {
    try {
      return readdirSync(path, { withFileTypes: true });
    } catch {
      return [];
    }
  };
  const folders = (path) =>
    entries(path)
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
  const size = (path) => entries(path).length;
  const remove = (path) => {
    try {
      const doomed = `${path}.removed-${process.pid}`;
      renameSync(path, doomed);
      rmSync(doomed, { recursive: true, force: true });
    } catch {
      // Left for the next run.
    }
  };
  for (const generation of folders(MODULES_CACHE)) {
    const path = join(MODULES_CACHE, generation);
    if (generation !== GENERATION || size(path) > MAX_CACHE_ENTRIES) remove(path);
  }
  // One folder per Node.js version, architecture and V8 flags, named `v<version>-<arch>-…`.
  for (const runtime of folders(COMPILE_CACHE)) {
    const path = join(COMPILE_CACHE, runtime);
    if (!runtime.startsWith(`v${process.versions.node}-`) || size(path) > MAX_CACHE_ENTRIES) remove(path);
  }
  remove(join(NODE_MODULES, '.experimental-vitest-cache'));
}

/**
 * Node.js 24 or later: 22 has `module.registerHooks`, but a CommonJS module whose source a load
 * hook gave does not resolve its own `require` calls through the resolve hook there (found by
 * running the suite on 22.23.5: 64 of 65 files failed; 24.22.3 passed).
 */
const MINIMUM_NODE_MAJOR = 24;
if (Number(process.versions.node.split('.')[0]) < MINIMUM_NODE_MAJOR || typeof nodeModule.registerHooks !== 'function') {
  throw new Error(
    `the tests need Node.js ${MINIMUM_NODE_MAJOR} or later (this is ${process.version}): \`npm test\` runs them on the pinned one where there is one for the platform (Linux with glibc, ADR 41), elsewhere on yours`,
  );
}
if (!globalThis.homelabTypeScriptLoader) {
  globalThis.homelabTypeScriptLoader = true;
  nodeModule.enableCompileCache(COMPILE_CACHE);
  nodeModule.registerHooks({
    resolve(specifier, context, nextResolve) {
      if (RELATIVE.test(specifier) && !FILE_TYPE.test(specifier) && context.parentURL?.startsWith('file:') && isProjectFile(fileURLToPath(context.parentURL))) {
        for (const suffix of ['.ts', '/index.ts']) {
          const url = new URL(specifier + suffix, context.parentURL);
          if (existsSync(url)) return { url: url.href, shortCircuit: true };
        }
      }
      return nextResolve(specifier, context);
    },
    load(url, context, nextLoad) {
      // Vitest adds a query to the test files it imports.
      const file = url.split('?')[0];
      const path = file.startsWith('file:') ? fileURLToPath(file) : undefined;
      if (path?.endsWith('.ts') && isProjectFile(path)) {
        const asModule = path.startsWith(TESTS);
        return { format: asModule ? 'module' : 'commonjs', source: compiled(path, asModule), shortCircuit: true };
      }
      const loaded = nextLoad(url, context);
      // The cdk8s-plus line's L1 classes, which Node.js loads from node_modules.
      if (path !== undefined && GENERATED_L1.test(path) && loaded.source != null) {
        return { ...loaded, source: withLinearFilter(String(loaded.source)) ?? loaded.source };
      }
      return loaded;
    },
  });
}
