/**
 * How the tests load the project's code: compiled as the bundles compile it (esbuild, CommonJS,
 * the build plugins' rewrite of the generated L1 classes, bin/build-plugins.cjs), then run by
 * Node.js itself with its compile cache. Vitest runs with its module runner off
 * (vitest.config.mts): the runner asked the main process for every module and compiled each
 * anew, ~0.65 s per worker for the project's ~200 modules; this takes ~0.29 s (ADR 31, twelfth
 * round). Installed in the workers with `--import` and in the main process by the config (the
 * global setup). Plain JavaScript: it runs before any TypeScript can be loaded.
 *
 * - A relative import without an extension from the project's code finds `<path>.ts` or
 *   `<path>/index.ts`, as esbuild does when it bundles.
 * - The project's `.ts` files become CommonJS, as in the bundles; those under test/ become ES
 *   modules, since vitest can only be imported, with `__dirname`, `__filename` and `require`
 *   defined where they use them.
 * - The compiled text is kept in .cache/test-modules/, named by the SHA-256 of what makes it
 *   (this file, esbuild's version, the build plugins, the path, the source), so a change to any
 *   of them compiles anew; writes are atomic, as two workers may compile the same file. Old
 *   entries are not pruned: deleting the folder costs one compile of each file.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import nodeModule, { createRequire } from 'node:module';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const { GENERATED_L1, withLinearFilter } = require('../../bin/build-plugins.cjs');

/** This file, for the workers' `--import` (vitest.config.mts). */
export const TYPESCRIPT_LOADER = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NODE_MODULES = join(ROOT, 'node_modules') + sep;
const TESTS = join(ROOT, 'test') + sep;
const MODULES_CACHE = join(ROOT, '.cache', 'test-modules');
/** Where Node.js keeps the V8 code of what it compiled; written by test/setup/compile-cache.ts. */
const COMPILE_CACHE = join(ROOT, '.cache', 'node-compile');

const GENERATION = createHash('sha256')
  .update(readFileSync(TYPESCRIPT_LOADER))
  .update(require('esbuild/package.json').version)
  .update(readFileSync(join(ROOT, 'bin', 'build-plugins.cjs')))
  .digest('hex');
/** A relative import that names no file type (the project's own leave it out; some names have dots). */
const RELATIVE = /^\.\.?\//;
const FILE_TYPE = /\.(?:[cm]?[jt]s|json|node)$/;

const isProjectFile = (path) => path.startsWith(ROOT) && !path.startsWith(NODE_MODULES);

/** The JavaScript of a project's TypeScript file, from the cache or compiled now. */
function compiled(path, asModule) {
  const source = readFileSync(path, 'utf8');
  const key = createHash('sha256')
    .update(GENERATION)
    .update(path)
    .update(asModule ? 'esm' : 'cjs')
    .update(source)
    .digest('hex');
  const cached = join(MODULES_CACHE, `${key}.js`);
  if (existsSync(cached)) return readFileSync(cached, 'utf8');
  const generated = GENERATED_L1.test(path);
  const { code } = require('esbuild').transformSync(generated ? (withLinearFilter(source) ?? source) : source, {
    loader: 'ts',
    format: asModule ? 'esm' : 'cjs',
    platform: 'node',
    target: 'node20',
    // Failures point at the TypeScript; the generated classes (7 MB) are never where a test fails.
    sourcemap: generated ? false : 'inline',
    sourcefile: path,
  });
  const text = asModule ? moduleScopeOf(code) + code : code;
  const partial = `${cached}.${process.pid}.tmp`;
  try {
    mkdirSync(MODULES_CACHE, { recursive: true });
    writeFileSync(partial, text);
    renameSync(partial, cached);
  } catch {
    // A read-only checkout only loses the cache.
    rmSync(partial, { force: true });
  }
  return text;
}

/** CommonJS' module-scope names, for the ES modules under test/ that use them. */
function moduleScopeOf(code) {
  return [
    /\b__dirname\b/.test(code) ? 'const __dirname = import.meta.dirname;' : '',
    /\b__filename\b/.test(code) ? 'const __filename = import.meta.filename;' : '',
    /\brequire\b/.test(code) ? "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" : '',
  ].join('');
}

if (typeof nodeModule.registerHooks !== 'function') {
  throw new Error(`the tests need Node.js 22.15 or later (this is ${process.version}): run them with \`npm test\`, which uses the pinned one (ADR 41)`);
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
