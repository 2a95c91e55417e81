#!/usr/bin/env node
/**
 * Runs one of the project's commands (`synth`, `diff`, `validate`, `lint`, `import`, `upgrade`, `bench`)
 * from its compiled bundle in dist/, which is what the npm scripts call; and, in a worker
 * thread a command started, the bundle's `worker` export. The bundles are
 * rebuilt first whenever the sources differ from the ones they were built from — any file
 * added, removed, or changed in size or modification time — so a stale build never runs.
 * V8's code cache of each bundle is kept beside it: later runs skip compiling it again.
 *
 * Plain CommonJS with no dependency but esbuild (and only to rebuild): it runs before any
 * TypeScript has been compiled.
 */
'use strict';
const { closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } = require('node:fs');
const { isAscii } = require('node:buffer');
const Module = require('node:module');
const { dirname, join, relative, resolve } = require('node:path');
const vm = require('node:vm');
const { isMainThread, workerData } = require('node:worker_threads');

const ROOT = join(__dirname, '..');
const DIST = join(ROOT, 'dist');
/** Command -> its entry point; each exports `main(argv)` returning its exit status. */
const COMMANDS = {
  synth: 'main.ts',
  diff: 'scripts/diff.ts',
  validate: 'scripts/validate.ts',
  lint: 'scripts/lint.ts',
  import: 'scripts/import.ts',
  upgrade: 'scripts/upgrade.ts',
  bench: 'scripts/bench.ts',
  render: 'scripts/render.ts',
};
/** What the bundles are built from. */
const SOURCES = ['main.ts', 'lib', 'charts', 'scripts', 'imports', 'package-lock.json', 'bin/run.cjs', 'bin/build-plugins.cjs'];
const SIGNATURE = join(DIST, 'sources.txt');

/**
 * One line per source file: path, size and modification time. Directories are told apart by
 * their entries' types and paths built by hand, joined without path.join (ROOT is already
 * normal): every command pays for this walk (~250 files), and a stat per directory and
 * path.relative per file made it twice as slow, path.join's normalizing ~40% slower.
 */
function sourceSignature() {
  let signature = '';
  const file = (path) => {
    const stat = statSync(`${ROOT}/${path}`, { throwIfNoEntry: false });
    if (stat) signature += `${path} ${stat.size} ${stat.mtimeMs}\n`;
  };
  const directory = (path) => {
    const entries = readdirSync(`${ROOT}/${path}`, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const child = `${path}/${entry.name}`;
      if (entry.isDirectory() || (entry.isSymbolicLink() && statSync(`${ROOT}/${child}`, { throwIfNoEntry: false })?.isDirectory())) directory(child);
      else if (/\.(ts|json|cjs)$/.test(entry.name)) file(child);
    }
  };
  for (const source of SOURCES) {
    if (statSync(`${ROOT}/${source}`, { throwIfNoEntry: false })?.isDirectory()) directory(source);
    else if (/\.(ts|json|cjs)$/.test(source)) file(source);
  }
  return signature;
}

/** Bundles every command (each with its dependencies, so that it loads as one file), atomically. */
async function build(signature) {
  let esbuild;
  try {
    esbuild = require('esbuild');
  } catch {
    process.stderr.write('error: esbuild is missing: run `npm ci` first\n');
    process.exit(2);
  }
  const staging = join(DIST, `.build-${process.pid}`);
  mkdirSync(staging, { recursive: true });
  try {
    await esbuild.build({
      entryPoints: Object.fromEntries(Object.entries(COMMANDS).map(([command, entry]) => [command, join(ROOT, entry)])),
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      outdir: staging,
      sourcemap: 'linked',
      minify: true,
      // No keepNames: its call per function and class set up costs a synth ~6 ms. A bug's stack
      // trace is mapped back to the sources' names and lines instead (withSourcePositions).
      // cdk8s ships its own copy of yaml, the same version as ours: load the code once.
      alias: { yaml: join(ROOT, 'node_modules', 'yaml') },
      // `npm run import` only. Loaded from node_modules: bundled, prettier (its formatter) calls
      // createRequire(import.meta.url), which has no URL in a CommonJS bundle.
      external: ['json-schema-to-typescript'],
      plugins: require('./build-plugins.cjs').ESBUILD_PLUGINS,
      logLevel: 'error',
    });
    for (const file of readdirSync(staging)) renameSync(join(staging, file), join(DIST, file));
    // The code caches of the old bundles, and any a killed run left staged.
    for (const file of readdirSync(DIST)) if (/\.js\.cache/.test(file)) rmSync(join(DIST, file), { force: true });
    writeFileSync(SIGNATURE, signature);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * A kept code cache is replaced by a run that compiled this much more bytecode than the run
 * that wrote it. Measured: a small config's synth 0.96 MB, the example's 1.39 MB; the same run
 * again within 0.3% (Node.js 20; on 26, by `compiledSoFar`, within 0.5%).
 */
const CACHE_GROWTH = 1.1;

/**
 * What a code cache file starts with, four little-endian doubles: the bytecode its run had
 * compiled, and the size, modification time and inode of the bundle it was made from.
 */
const CACHE_HEADER_BYTES = 32;

/**
 * How much this process has compiled, for comparing runs of one Node.js. Newer V8s (the pinned
 * Node.js 26's) keep bytecode in the heap's trusted space, whose size is read for free; it also
 * holds what the optimizing compilers made, so it is 1.4 (a small config's synth) to 1.8 times
 * (800 apps) V8's bytecode count, the example's 1.64–1.69: a longer run of the same code reads a
 * few percent more, well under CACHE_GROWTH. Otherwise only getHeapCodeStatistics counts the
 * bytecode, by walking the heap: ~10 ms at the end of every synth.
 */
function compiledSoFar() {
  const v8 = require('node:v8');
  const trusted = v8.getHeapSpaceStatistics().find((space) => space.space_name === 'trusted_space');
  return trusted ? trusted.space_used_size : v8.getHeapCodeStatistics().bytecode_and_metadata_size;
}

/** The bundle a cache must have been made from: V8 itself compares only the source's length. */
function identityOf(stat) {
  return [stat.size, stat.mtimeMs, stat.ino];
}

/** Whether the file at `bundle` is still the one of that identity: a rebuild renames a new one over it at any time. */
function isStill(bundle, identity) {
  return identityOf(statSync(bundle)).every((value, i) => value === identity[i]);
}

/**
 * A bundle's source and identity, read from one open file: a rebuild renames a new file over the
 * path at any time. esbuild escapes what is not ASCII (but in a `String.raw` template), and ASCII
 * read as Latin-1 is the same text without decoding UTF-8: ~4 ms less for the 1.5 MB synth bundle
 * on a slow machine.
 */
function readBundle(bundle) {
  const fd = openSync(bundle, 'r');
  try {
    const bytes = readFileSync(fd);
    return { source: bytes.toString(isAscii(bytes) ? 'latin1' : 'utf8'), identity: identityOf(fstatSync(fd)) };
  } finally {
    closeSync(fd);
  }
}

/** The kept code cache of a bundle and the bytecode its run had compiled, if it was made from this bundle. */
function readCache(cacheFile, identity) {
  let kept;
  try {
    kept = readFileSync(cacheFile);
  } catch {
    // None yet, or a build in another process removed it just now.
    return undefined;
  }
  if (kept.length <= CACHE_HEADER_BYTES) return undefined;
  if (identity.some((value, i) => kept.readDoubleLE(8 * (i + 1)) !== value)) return undefined;
  return { data: kept.subarray(CACHE_HEADER_BYTES), compiled: kept.readDoubleLE(0) };
}

/**
 * Loads a bundle through V8's code cache (kept beside it) and returns its exports. The cache
 * holds what the run that wrote it compiled, and the runs after it compile the rest on every
 * start: a cache from `synth --help` made each later synth of the example ~30 ms slower, one
 * from a small config's synth ~40 ms. So a run that did its work (`worthCaching()`) writes the
 * cache when there is none usable, or when it compiled a tenth more bytecode than the run that
 * wrote it (V8's heap statistics, kept in the cache's header: creating a cache to compare would
 * cost 30–45 ms on every exit) — unless the bundle was rebuilt meanwhile. `compiledBefore` is
 * what this process compiled for something else first (a build: esbuild's code, and the packages
 * a build plugin loads), not counted.
 */
function load(bundle, worthCaching = () => true, compiledBefore = 0) {
  const cacheFile = `${bundle}.cache`;
  const { source, identity } = readBundle(bundle);
  loadedBundles.set(bundle, identity);
  const cached = readCache(cacheFile, identity);
  const script = new vm.Script(Module.wrap(source), { filename: bundle, cachedData: cached?.data });
  const module = new Module(bundle, null);
  module.filename = bundle;
  module.paths = Module._nodeModulePaths(dirname(bundle));
  script.runInThisContext().call(module.exports, module.exports, (id) => module.require(id), module, bundle, dirname(bundle));
  if (isMainThread) {
    const usable = cached !== undefined && !script.cachedDataRejected;
    // After the run, so that the functions it compiled are in the cache too.
    process.once('exit', () => {
      if (!worthCaching()) return;
      const compiled = compiledSoFar() - compiledBefore;
      if (usable && compiled <= cached.compiled * CACHE_GROWTH) return;
      // Renamed into place: another command may be reading it at the same time.
      const staged = `${cacheFile}.${process.pid}`;
      try {
        if (!isStill(bundle, identity)) return;
        const header = Buffer.alloc(CACHE_HEADER_BYTES);
        [compiled, ...identity].forEach((value, i) => header.writeDoubleLE(value, 8 * i));
        writeFileSync(staged, Buffer.concat([header, script.createCachedData()]));
        renameSync(staged, cacheFile);
      } catch {
        // A read-only checkout only loses the cache; a bundle removed meanwhile needs none.
        rmSync(staged, { force: true });
      }
    });
  }
  return module.exports;
}

/**
 * A frame of a V8 stack trace: `at [async |new ]name (file:line:column)`, or `at file:line:column`
 * (told apart by the closing parenthesis: a path may hold " (").
 */
const STACK_FRAME = /^(\s+at (?:async |new )?)(?:(.+?) \((.+\.js):(\d+):(\d+)\)|(.+\.js):(\d+):(\d+))$/;

/** The bundles this thread loaded, and the identity of each (identityOf): a map is read only if the bundle is still that one. */
const loadedBundles = new Map();

/**
 * A bug's stack trace, with each frame in a bundle given the source file, line and name it was
 * built from (the source map esbuild writes beside the bundle, read only when a bug is
 * reported): the bundles' code is minified. A frame's function is named where its caller calls
 * it, as Node.js's --enable-source-maps does (which does not reach code run by `vm.Script`):
 * where the map names none (a method, a constructor, a function called from outside the
 * bundle) the minified name stays. Frames outside the bundles, any the map does not cover, and
 * all of a bundle rebuilt since it was loaded, stay as V8 printed them.
 */
function withSourcePositions(stack) {
  const maps = new Map();
  const mapOf = (bundle) => {
    if (!maps.has(bundle)) {
      let map;
      try {
        // A build since this bundle was loaded replaced its map too.
        const loaded = loadedBundles.get(bundle);
        if (loaded && isStill(bundle, loaded)) {
          map = new Module.SourceMap(JSON.parse(readFileSync(`${bundle}.map`, 'utf8')));
        }
      } catch {
        // No map (removed, or a build under way): the frame stays as it is.
      }
      maps.set(bundle, map);
    }
    return maps.get(bundle);
  };
  const lines = stack.split('\n');
  const frames = lines.map((line) => {
    const match = STACK_FRAME.exec(line);
    if (!match) return undefined;
    const at = match[1];
    const [name, bundle, lineNumber, column] = match[3] === undefined ? [undefined, ...match.slice(6, 9)] : match.slice(2, 6);
    // load() runs the bundle inside Module.wrap's function, which its first line starts with.
    const wrapped = lineNumber === '1' ? Module.wrapper[0].length : 0;
    const entry = mapOf(bundle)?.findEntry(Number(lineNumber) - 1, Number(column) - 1 - wrapped);
    // The maps are written in the staging folder, one level below dist/, and name sources relative to it.
    return entry?.originalSource ? { at, name, bundle, entry, source: relative(process.cwd(), resolve(DIST, 'staging', entry.originalSource)) } : undefined;
  });
  return lines
    .map((line, i) => {
      const frame = frames[i];
      if (!frame) return line;
      const caller = frames[i + 1];
      const name = (caller?.bundle === frame.bundle && caller.entry.name) || frame.name;
      const where = `${frame.source}:${frame.entry.originalLine + 1}:${frame.entry.originalColumn + 1}`;
      return `${frame.at}${name ? `${name} (${where})` : where}`;
    })
    .join('\n');
}

async function run() {
  // A worker thread a command started (synth's environments): the bundle is built, and current.
  if (!isMainThread) {
    load(join(DIST, `${workerData.command}.js`)).worker();
    return 0;
  }
  const [command, ...argv] = process.argv.slice(2);
  if (command === '--build') {
    mkdirSync(DIST, { recursive: true });
    await build(sourceSignature());
    return 0;
  }
  if (!(command in COMMANDS)) {
    process.stderr.write(`error: expected a command: ${Object.keys(COMMANDS).join(', ')}\nusage: node bin/run.cjs <command> [options]\n`);
    return 2;
  }
  // For `npm run bench`: the peak memory of this run.
  if (process.env.HOMELAB_REPORT_MAX_RSS === '1') process.once('exit', () => process.stderr.write(`max RSS: ${process.resourceUsage().maxRSS} KB\n`));
  mkdirSync(DIST, { recursive: true });
  const signature = sourceSignature();
  let compiledByBuild = 0;
  if (!existsSync(SIGNATURE) || readFileSync(SIGNATURE, 'utf8') !== signature) {
    try {
      const before = compiledSoFar();
      await build(signature);
      compiledByBuild = compiledSoFar() - before;
    } catch (error) {
      // esbuild has printed the problems with their files and lines.
      process.stderr.write(`error: the sources do not compile (${error.errors ? `${error.errors.length} errors` : error.message}); nothing was run\n`);
      return 1;
    }
  }
  // Not after --help or a refusal (exit status 2): they compile little of the bundle.
  const bundle = load(join(DIST, `${command}.js`), () => !argv.includes('--help') && !argv.includes('-h') && (process.exitCode ?? 0) <= 1, compiledByBuild);
  // A command that can spread its work over threads starts them from this file.
  if (bundle.mainWithWorkers) return bundle.mainWithWorkers(argv, { filename: __filename, workerData: { command } });
  return bundle.main(argv);
}

/**
 * Ends the process once stdout and stderr have written what they hold (a pipe's writes are
 * asynchronous). Ending by itself, Node.js would first wait for the tasks V8 gave its helper
 * threads, then free the environment and the heap one by one: ~35 ms of `--help`'s end and
 * ~10 ms of a synth's on a slow machine (ADR 31). The 'exit' listeners still run, the code
 * cache's among them.
 */
function exitWhenWritten(status) {
  process.exitCode = status;
  let streams = 2;
  const written = () => {
    streams -= 1;
    if (streams === 0) process.exit();
  };
  // The callback comes after what was written before, also when the stream has failed.
  process.stdout.write('', written);
  process.stderr.write('', written);
}

run().then(
  // A worker thread keeps serving its parent, which ends it.
  (status) => isMainThread && exitWhenWritten(status),
  (error) => {
    process.stderr.write(`${error && error.stack ? withSourcePositions(String(error.stack)) : error}\n`);
    process.exitCode = 1;
  },
);
