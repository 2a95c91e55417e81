/**
 * bin/run.cjs, which every npm script goes through: it rebuilds the bundles whenever a source
 * was added, removed or changed since they were built, so a stale build never runs, and only
 * then; and it keeps V8's code cache of the runs that did their work. Run on a project of its
 * own (the real run.cjs and build plugins, stub commands; node_modules linked), so that
 * rebuilding is cheap and the repository's dist/ stays as it is.
 */
import { isAscii } from 'node:buffer';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { npmCommands } from '../lib/util/npm-scripts';
import { ROOT, tempDir } from './support';

/** A command printing `text` when run, and exiting with `status`. */
const command = (text: string, status = 0) => `export function main(): number {\n  console.log(${JSON.stringify(text)});\n  return ${status};\n}\n`;

describe('the compiled CLI (bin/run.cjs)', () => {
  let project: string;
  const run = (...args: string[]) => spawnSync(process.execPath, [join(project, 'bin', 'run.cjs'), ...args], { encoding: 'utf8' });
  /** Which file a path is now: a rebuilt bundle and a rewritten cache are renamed into place, so each is a new file (modification times may be a second apart only). */
  const fileAt = (path: string) => statSync(join(project, path)).ino;
  const bundle = () => fileAt('dist/synth.js');
  /** A source rewritten with the same length, a second later: only its modification time tells. */
  const rewrite = (path: string, text: string) => {
    writeFileSync(join(project, path), text);
    const later = new Date(statSync(join(project, path)).mtimeMs + 1000);
    utimesSync(join(project, path), later, later);
  };

  beforeAll(() => {
    // In a folder whose name holds " (": a stack frame's path then does too.
    project = join(tempDir(), 'a checkout (copy)');
    for (const dir of ['bin', 'lib', 'scripts']) mkdirSync(join(project, dir), { recursive: true });
    for (const file of ['run.cjs', 'build-plugins.cjs']) copyFileSync(join(ROOT, 'bin', file), join(project, 'bin', file));
    copyFileSync(join(ROOT, 'package.json'), join(project, 'package.json'));
    symlinkSync(join(ROOT, 'node_modules'), join(project, 'node_modules'));
    // synth prints the greeting; with --more it first compiles and runs 6000 functions (well over a tenth more
    // than the run without, also counted by the trusted space, whose fixed part is larger). Made at run time, so
    // that every rebuild does not bundle and minify them (~0.2 s a build): run.cjs counts the bytecode of the
    // whole process (compiledSoFar), so they count as the bundle's own functions would, though the code cache
    // it then writes holds only the bundle's.
    const more = 'let sum = 0;\n    for (let i = 0; i < 6000; i++) sum += new Function(\'x\', `return x * ${i} + ${i % 7};`)(1);\n    console.error(sum);';
    // --loud: more than a pipe holds at once on both streams, so that their writes are left pending.
    const loud = "if (argv.includes('--loud')) {\n    process.stdout.write('o'.repeat(1 << 20));\n    process.stderr.write('e'.repeat(300_000));\n    return 1;\n  }";
    writeFileSync(
      join(project, 'main.ts'),
      `import { GREETING } from './lib/greeting';\nimport { failDeeper } from './lib/bug';\nexport function main(argv: string[]): number {\n  if (argv.includes('--bug')) failDeeper();\n  ${loud}\n  if (argv.includes('--more')) {\n    ${more}\n  }\n  console.log(GREETING);\n  return 0;\n}\n`,
    );
    writeFileSync(join(project, 'lib', 'greeting.ts'), "export const GREETING = 'one';\n");
    // A named function, called from an anonymous one (its frame has no name, only a path).
    writeFileSync(
      join(project, 'lib', 'bug.ts'),
      "export function failDeep(): never {\n  throw new Error('a bug');\n}\nexport const failDeeper = (): never =>\n  [0].map(() => failDeep())[0];\n",
    );
    // Every other command the npm scripts run (bin/run.cjs bundles them all); validate refuses its input.
    for (const { command: name } of npmCommands().filter((script) => script.command !== 'synth')) {
      writeFileSync(join(project, 'scripts', `${name}.ts`), command(name, name === 'validate' ? 2 : 0));
    }
  });

  it("is how every npm script and cdk8s.yaml's app run a command, all with the same Node.js options", () => {
    const scripts = npmCommands();
    expect(scripts.map((script) => script.command)).toContain('synth');
    const [options, ...others] = new Set(scripts.map((script) => script.nodeOptions.join(' ')));
    expect(others).toEqual([]);
    const app = (parse(readFileSync(join(ROOT, 'cdk8s.yaml'), 'utf8')) as { app: string }).app;
    expect(app).toBe(['node', options, 'bin/run.cjs synth'].filter((part) => part !== '').join(' '));
  });

  it('builds before the first run, and runs the code the sources hold', () => {
    const first = run('synth');
    expect(first.stderr).toBe('');
    expect(first.stdout).toBe('one\n');
    expect(run('diff').stdout).toBe('diff\n');
  });

  it('runs the bundle as it is while no source changed', () => {
    const built = bundle();
    expect(run('synth').stdout).toBe('one\n');
    expect(bundle()).toBe(built);
  });

  it("reports a bug's stack trace at the sources' files, lines and names, not the minified bundle's", () => {
    const bug = spawnSync(process.execPath, [join(project, 'bin', 'run.cjs'), 'synth', '--bug'], { encoding: 'utf8', cwd: project });
    expect(bug.status).toBe(1);
    const [message, ...frames] = bug.stderr.split('\n');
    expect(message).toBe('Error: a bug');
    expect(frames.slice(0, 4)).toEqual(['    at failDeep (lib/bug.ts:2:9)', '    at lib/bug.ts:5:17', '    at Array.map (<anonymous>)', '    at failDeeper (lib/bug.ts:5:7)']);
    // main is called from bin/run.cjs, outside the bundle: no call site in the map names it.
    expect(frames[4]).toMatch(/^ {4}at \S+ \(main\.ts:\d+:\d+\)$/);
  });

  it('ends the process only once stdout and stderr have written all they were given, with the exit status', () => {
    const loud = spawnSync(process.execPath, [join(project, 'bin', 'run.cjs'), 'synth', '--loud'], { encoding: 'utf8', maxBuffer: 1 << 22 });
    expect(loud.status).toBe(1);
    expect(loud.stdout).toBe('o'.repeat(1 << 20));
    expect(loud.stderr).toBe('e'.repeat(300_000));
  });

  it('runs a bundle holding text that is not ASCII as it was written', () => {
    // esbuild escapes such text elsewhere; a String.raw template keeps it (the bundles' own are read as Latin-1 only when ASCII).
    rewrite('lib/greeting.ts', 'export const GREETING = String.raw`naïve — ü`;\n');
    expect(run('synth').stdout).toBe('naïve — ü\n');
    expect(isAscii(readFileSync(join(project, 'dist', 'synth.js')))).toBe(false);
  });

  it('rebuilds when a source changed, even to the same size', () => {
    rewrite('lib/greeting.ts', "export const GREETING = 'two';\n");
    expect(run('synth').stdout).toBe('two\n');
  });

  it('rebuilds when a source is added or removed', () => {
    let built = bundle();
    writeFileSync(join(project, 'lib', 'unused.ts'), 'export const UNUSED = 1;\n');
    expect(run('synth').stdout).toBe('two\n');
    expect(bundle()).not.toBe(built);
    built = bundle();
    rmSync(join(project, 'lib', 'unused.ts'));
    expect(run('synth').stdout).toBe('two\n');
    expect(bundle()).not.toBe(built);
  });

  it('keeps the code cache of the first run that did its work, not of --help or a refusal (exit status 2)', () => {
    const cache = (name: string) => existsSync(join(project, 'dist', `${name}.js.cache`));
    rewrite('lib/greeting.ts', "export const GREETING = 'two';\n");
    expect(run('synth', '--help').stdout).toBe('two\n');
    expect(cache('synth')).toBe(false);
    expect(run('validate').status).toBe(2);
    expect(cache('validate')).toBe(false);
    expect(run('synth').status).toBe(0);
    expect(cache('synth')).toBe(true);
  });

  it('replaces the code cache only after a run that compiled a tenth more than the one that wrote it', () => {
    const cacheFile = () => fileAt('dist/synth.js.cache');
    expect(run('synth').status).toBe(0);
    const written = cacheFile();
    expect(run('synth').status).toBe(0);
    expect(cacheFile()).toBe(written);
    expect(run('synth', '--more').status).toBe(0);
    expect(cacheFile()).not.toBe(written);
  });

  it('never runs a code cache made from another bundle, even one of the same length (V8 compares only the length)', () => {
    expect(run('synth').stdout).toBe('two\n');
    const path = join(project, 'dist', 'synth.js');
    const code = readFileSync(path, 'utf8');
    expect(code.match(/(["'])two\1/g)).toHaveLength(1);
    // Another bundle built meanwhile (by another process), renamed into place as run.cjs does.
    writeFileSync(`${path}.other`, code.replace(/(["'])two\1/, '$1owt$1'));
    renameSync(`${path}.other`, path);
    expect(run('synth').stdout).toBe('owt\n');
  });

  it('runs nothing when the sources do not compile, and the fixed sources next time', () => {
    writeFileSync(join(project, 'lib', 'greeting.ts'), "export const GREETING = 'three'\nexport const = ;\n");
    const broken = run('synth');
    expect(broken.status).toBe(1);
    expect(broken.stdout).toBe('');
    expect(broken.stderr).toMatch(/^error: the sources do not compile \(1 errors?\); nothing was run$/m);
    writeFileSync(join(project, 'lib', 'greeting.ts'), "export const GREETING = 'three';\n");
    expect(run('synth').stdout).toBe('three\n');
  });
});
