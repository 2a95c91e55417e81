/**
 * Crash-safe output (ADR 20): a write that changes the output, killed with SIGKILL before each
 * of its steps (HOMELAB_TEST_KILL_AT_STEP, lib/output/test-faults.ts), leaves the output
 * directory, docs/platform.md and docs/disaster-recovery.md each as exactly the old or exactly
 * the new content; the next command finishes or cleans up what the killed one left, and nothing
 * temporary remains. The kills at every step hit a process that writes what the real CLI's synth
 * wrote, with the CLI's code (test/write-output-child.ts; that it takes the CLI's steps is checked
 * first): the synthesis before the write touches no file and was most of each killed process's
 * time. Real synth processes are killed too: before the exchange, and at each step of a run
 * recovering from that kill.
 */
import { cpSync, existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { buildSync } from 'esbuild';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PLATFORM_DOC_HEADER } from '../lib/output/platform-doc';
import { RECOVERY_DOC_HEADER } from '../lib/output/recovery-doc';
import { main as lintMain } from '../scripts/lint';
import { captureOutput, fixtureObject, readTree, ROOT, runCli, runMain, runNode, tempDir, toYamlText } from './support';
import type { WriteJob } from './write-output-child';

const RESOURCES = { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '32Mi' } };

/** The small fixture with one own app: `web` in the old config, `api` in the new one, so that files are added, removed and changed, and the diagrams change. */
function configWith(app: string): string {
  const config = fixtureObject('small');
  config.apps = { [app]: { image: 'docker.io/traefik/whoami:v1.10.1', ports: { http: 80 }, probes: { readiness: { http: { port: 'http' } } }, resources: RESOURCES } };
  const file = join(tempDir(), `${app}.yaml`);
  writeFileSync(file, toYamlText(config));
  return file;
}

/** A directory with `k8s/`, `docs/platform.md` and `docs/disaster-recovery.md` (beside it by default), as the given config makes them. */
interface State {
  readonly dir: string;
  readonly out: string;
  readonly docs: string;
  readonly runbook: string;
}

function stateIn(dir: string): State {
  return { dir, out: join(dir, 'k8s'), docs: join(dir, 'docs', 'platform.md'), runbook: join(dir, 'docs', 'disaster-recovery.md') };
}

/** The compiled CLI's synth on a state, with extra environment variables. */
function synth(config: string, state: State, env: NodeJS.ProcessEnv = {}): ReturnType<typeof runNode> {
  return runCli(['--config', config, '--out', state.out, '--docs', state.docs, '--quiet'], env);
}

interface Step {
  readonly n: number;
  readonly what: string;
  readonly path: string;
}

/**
 * The steps to kill before: every step outside the staging tree (journal, exchange or renames,
 * documents, removals) and the first and the last of the many that fill it (all alike: the
 * staging tree is invisible until it is swapped in).
 */
function killPoints(steps: readonly Step[]): number[] {
  const filling = steps.filter((s) => /~synth-\d+-staging\//.test(s.path));
  const chosen = new Set([...steps.filter((s) => !filling.includes(s)).map((s) => s.n), filling[0]?.n, filling.at(-1)?.n]);
  return [...chosen].filter((n): n is number => n !== undefined).sort((a, b) => a - b);
}

function parseTrace(stderr: string): Step[] {
  return [...stderr.matchAll(/^fs step (\d+): (\S+) (.*)$/gm)].map((m) => ({ n: Number(m[1]), what: m[2], path: m[3] }));
}

/** A trace with its run's directory and process id left out: what two runs on two copies of a state share. */
function sameSteps(steps: readonly Step[], dir: string): string[] {
  return steps.map((s) => `${s.what} ${s.path.replace(dir, '<dir>').replace(/~synth-\d+-/, '~synth-<pid>-')}`);
}

/** What a state holds: its output tree and documents, or undefined where missing. */
function contents(state: State): { tree: Map<string, string> | undefined; doc: string | undefined; runbook: string | undefined } {
  const read = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8') : undefined);
  return { tree: existsSync(state.out) ? readTree(state.out) : undefined, doc: read(state.docs), runbook: read(state.runbook) };
}

/** A tree as one comparable string; a missing tree is none of the trees compared with. */
const key = (tree: Map<string, string> | undefined) => (tree ? JSON.stringify([...tree]) : 'missing');

/** Nothing but the output directory and the documents: no temporary left. */
function expectNoLeftovers(state: State): void {
  expect(readdirSync(state.dir).sort()).toEqual(['docs', 'k8s']);
  expect(readdirSync(join(state.dir, 'docs')).sort()).toEqual(['disaster-recovery.md', 'platform.md']);
}

describe('a synth killed at any step', () => {
  let newConfig: string;
  /** k8s/ and docs/ as the old config makes them, copied for every trial. */
  let pristine: State;
  let before: { tree: Map<string, string>; doc: string; runbook: string };
  let after: { tree: Map<string, string>; doc: string; runbook: string };
  /** The steps of a write from the old to the new state (directories exchanged). */
  let steps: Step[];

  /** The write-only process (test/write-output-child.ts) and what it writes: what the CLI's synth of the new config wrote. */
  let writer: { script: string; job: string };

  beforeAll(() => {
    const oldConfig = configWith('web');
    newConfig = configWith('api');
    pristine = stateIn(tempDir());
    // The old state is where the kills start from, not under test: made in-process (the same code).
    expect(runMain(['--config', oldConfig, '--out', pristine.out, '--docs', pristine.docs, '--quiet']).status).toBe(0);
    before = contents(pristine) as typeof before;
    const traced = oldState();
    const trace = synth(newConfig, traced, { HOMELAB_TEST_TRACE_STEPS: '1' });
    expect(trace.status, trace.stderr).toBe(0);
    after = contents(traced) as typeof after;
    steps = parseTrace(trace.stderr);
    // The change touches both, or the test would prove less than it says.
    expect(after.tree).not.toEqual(before.tree);
    expect(after.doc).not.toBe(before.doc);
    expect(after.runbook).not.toBe(before.runbook);
    writer = writerOf(after);
    // The writer's steps are the CLI's, to the path, and it writes what the CLI wrote.
    const copy = oldState();
    const written = writeOnly(copy, { HOMELAB_TEST_TRACE_STEPS: '1' });
    expect(written.status, written.stderr).toBe(0);
    expect(sameSteps(parseTrace(written.stderr), copy.dir)).toEqual(sameSteps(steps, traced.dir));
    expect(contents(copy)).toEqual(after);
  });

  /** The write-only process writing the new config's output over `state`, with extra environment variables. */
  function writeOnly(state: State, env: NodeJS.ProcessEnv): ReturnType<typeof runNode> {
    return runNode([writer.script, writer.job, state.dir], env);
  }

  /** Builds the write-only process and its job: writing `state` over the old state. */
  function writerOf(state: typeof after): { script: string; job: string } {
    const dir = tempDir();
    const script = join(dir, 'write-output.cjs');
    buildSync({ entryPoints: [join(ROOT, 'test', 'write-output-child.ts')], bundle: true, platform: 'node', format: 'cjs', target: 'node20', outfile: script, logLevel: 'error' });
    const environments = new Map<string, [string, string][]>();
    for (const [path, text] of state.tree) {
      const [environment, ...rest] = path.split('/');
      environments.set(environment, [...(environments.get(environment) ?? []), [rest.join('/'), text]]);
    }
    const job: WriteJob = {
      out: 'k8s',
      environments: [...environments].map(([environment, files]) => ({ environment, files })),
      documents: [
        { path: join('docs', 'platform.md'), header: PLATFORM_DOC_HEADER, option: '--docs', content: state.doc },
        { path: join('docs', 'disaster-recovery.md'), header: RECOVERY_DOC_HEADER, option: '--runbook', content: state.runbook },
      ],
    };
    writeFileSync(join(dir, 'job.json'), JSON.stringify(job));
    return { script, job: join(dir, 'job.json') };
  }

  /** A copy of the old state, in a directory of its own. */
  function oldState(): State {
    const state = stateIn(tempDir());
    cpSync(pristine.dir, state.dir, { recursive: true });
    return state;
  }

  /** Kills the write of the new config's output (the write-only process) on a copy of the old state before step n. */
  function killedBefore(n: number, env: NodeJS.ProcessEnv = {}): State {
    const state = oldState();
    const killed = writeOnly(state, { ...env, HOMELAB_TEST_KILL_AT_STEP: String(n) });
    expect(killed.signal, `step ${n}: ${killed.stderr}`).toBe('SIGKILL');
    return state;
  }

  /**
   * A real synth killed just before the exchange: the journal committed, the new tree staged.
   * Each test that starts from there kills its own: the journal names the directory it is in.
   */
  function killedBeforeExchange(): State {
    const state = oldState();
    const killed = synth(newConfig, state, { HOMELAB_TEST_KILL_AT_STEP: String(steps.find((s) => s.what === 'exchange')!.n) });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    return state;
  }

  /** The next synth (in-process: the same code) finishes or undoes what the killed one left, and leaves nothing else. */
  function expectNextSynthFinishes(state: State): void {
    expect(runMain(['--config', newConfig, '--out', state.out, '--docs', state.docs, '--quiet']).status).toBe(0);
    expect(contents(state)).toEqual(after);
    expectNoLeftovers(state);
  }

  /** Old or new, each whole. */
  function expectOldOrNew(state: State, step: string): 'old' | 'new' {
    const { tree, doc, runbook } = contents(state);
    expect([key(before.tree), key(after.tree)], `k8s/ after a kill before ${step}`).toContain(key(tree));
    expect([before.doc, after.doc], `the document after a kill before ${step}`).toContain(doc);
    expect([before.runbook, after.runbook], `the runbook after a kill before ${step}`).toContain(runbook);
    return key(tree) === key(before.tree) ? 'old' : 'new';
  }

  it('with the directories exchanged in one step: k8s/ is always the old or the new tree, and the next synth finishes', () => {
    expect(steps.map((s) => s.what)).toContain('exchange');
    const seen = new Set<string>();
    for (const n of killPoints(steps)) {
      const state = killedBefore(n);
      seen.add(expectOldOrNew(state, `${steps[n - 1].what} ${steps[n - 1].path}`));
      expectNextSynthFinishes(state);
    }
    // The kills fell on both sides of the swap.
    expect(seen).toEqual(new Set(['old', 'new']));
  });

  it('with two renames (no exchange): only a kill between them leaves no k8s/, and the next command of any kind completes the swap', () => {
    // Without perl on the PATH the exchange cannot happen.
    const noPerl = { PATH: tempDir() };
    const traced = oldState();
    const trace = synth(newConfig, traced, { ...noPerl, HOMELAB_TEST_TRACE_STEPS: '1' });
    expect(contents(traced)).toEqual(after);
    const fallback = parseTrace(trace.stderr);
    const copy = oldState();
    // The write-only process falls back alike.
    const written = writeOnly(copy, { ...noPerl, HOMELAB_TEST_TRACE_STEPS: '1' });
    expect(sameSteps(parseTrace(written.stderr), copy.dir)).toEqual(sameSteps(fallback, traced.dir));
    const retire = fallback.find((s) => s.what === 'rename' && s.path.endsWith('-retired'))!;
    expect(retire).toBeDefined();
    // Up to the exchange, and so a kill before it, the steps are the same as in the test
    // above (perl runs only for the exchange itself): kill after it.
    const exchange = fallback.find((s) => s.what === 'exchange')!;
    expect(fallback.slice(0, exchange.n).map((s) => s.what)).toEqual(steps.slice(0, exchange.n).map((s) => s.what));
    let missing = 0;
    for (const n of killPoints(fallback).filter((n) => n > exchange.n)) {
      const state = killedBefore(n, noPerl);
      if (!existsSync(state.out)) {
        // Between the renames: the old tree is retired, the committed journal says what to finish.
        missing += 1;
        expect(n).toBe(retire.n + 1);
        expect(readdirSync(state.dir).filter((e) => /^\.k8s~synth-\d+-journal$/.test(e))).toHaveLength(1);
        // lint reads k8s/: it completes the swap first.
        captureOutput(() => lintMain(['--dir', state.out]));
        expect(contents(state)).toEqual(after);
      } else {
        expectOldOrNew(state, `${fallback[n - 1].what} ${fallback[n - 1].path}`);
      }
      expectNextSynthFinishes(state);
    }
    expect(missing).toBe(1);
  });

  it("never puts a dead run's tree over output a later run wrote (its process id reused meanwhile)", () => {
    const state = killedBeforeExchange();
    const leftovers = () => readdirSync(state.dir).filter((e) => e.startsWith('.k8s~synth-'));
    const renamePid = (from: RegExp, to: string) => {
      for (const entry of leftovers()) renameSync(join(state.dir, entry), join(state.dir, entry.replace(from, to)));
    };
    // While a live process holds the dead run's id, later runs leave its temporaries alone ...
    const dead = /^\.k8s~synth-(\d+)-/.exec(leftovers()[0])![1];
    renamePid(/^\.k8s~synth-\d+-/, `.k8s~synth-${process.pid}-`);
    const later = configWith('later');
    expect(synth(later, state).status).toBe(0);
    const newer = contents(state);
    expect(newer.tree).not.toEqual(after.tree);
    // ... and once that id is free again, recovery discards them instead of swapping them in.
    renamePid(/^\.k8s~synth-\d+-/, `.k8s~synth-${dead}-`);
    captureOutput(() => lintMain(['--dir', state.out]));
    expect(contents(state)).toEqual(newer);
    expectNoLeftovers(state);
  });

  it('a kill while the next run recovers leaves it whole too; the run after finishes', () => {
    const state = killedBeforeExchange();
    // Each run is killed one step later than the one before, until one gets through.
    for (let n = 1; ; n++) {
      const run = synth(newConfig, state, { HOMELAB_TEST_KILL_AT_STEP: String(n) });
      expectOldOrNew(state, `step ${n} of a recovering run`);
      if (run.signal === null) {
        expect(run.status, run.stderr).toBe(0);
        break;
      }
    }
    expect(contents(state)).toEqual(after);
    expectNoLeftovers(state);
  });
});
