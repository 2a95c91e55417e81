/**
 * `npm run bench`: what the operator waits for, each measured as the operator runs it (a fresh
 * process each time, median of several runs) against its target, with the floors — loading
 * cdk8s and synthesizing one empty chart; a process started by a shell — and npm's own share of
 * an `npm run` (`npm run env`) measured in the same run for reference:
 *
 *   npm run synth (the shipped homelab.yaml, every environment)    <= 500 ms
 *   npm run synth -- --check, npm run diff, npm run synth -- --help <= 500 ms each
 *   0, 50, 200 and 800 own apps on three environments              800 apps <= 3 s, linear
 *   npm test (the whole suite, once)                               <= 20 s
 *
 * Peak memory (RSS) is reported beside each synth, and on Linux the CPU time of each command and
 * of the processes it waited for, with the system's share of it: how much work a run does, apart
 * from how it is spread over the cores. The suite starts thousands of processes (the checkpoint
 * scripts under test, their pipelines and fakes), so the second floor says how much of its time
 * is the machine's. Where the shell sets NODE_EXTRA_CA_CERTS, each `npm run` is measured with it
 * and without it (see below). Speed targets live here, never in a test.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join, relative } from 'node:path';
import { parse, stringify } from 'yaml';
import { CommandSpec, parseCommandLine, runCommand } from '../lib/tools/cli';
import { npmCommandArgs } from '../lib/util/npm-scripts';
import { projectRoot } from '../lib/util/project';

const RUNS = 7;
/** The processes one run of the tests' floor starts: each takes a few ms, too little to time alone (the CPU time counts in 10 ms ticks). */
const FLOOR_PROCESSES = 200;
const APP_COUNTS = [0, 50, 200, 800];
const TARGETS = { synth: 500, check: 500, diff: 500, help: 500, apps800: 3000, tests: 20_000 } as const;

interface Measurement {
  /** Median wall time. */
  readonly ms: number;
  /**
   * Median CPU time of the command and the processes it waited for, where the system tells it:
   * user and system together, and the system's part (the kernel's work: starting processes,
   * faulting pages in, files), each the median over the runs.
   */
  readonly cpu?: CpuTime;
  /** Largest peak RSS over the runs, when the command reports it. */
  readonly peakMb?: number;
}

/** CPU time in ms: user and system together, and the system's part. */
export interface CpuTime {
  readonly totalMs: number;
  readonly systemMs: number;
}

/**
 * The CPU time of this process's children that have ended and been waited for, on Linux;
 * undefined elsewhere. It includes the children's own waited-for children (npm, the command it
 * starts, the test run's workers and what they start), not a process left running when its
 * parent ended (esbuild's service: ~0.9 s of the suite's CPU).
 */
function waitedChildrenCpu(): CpuTime | undefined {
  try {
    return childrenCpuOf(readFileSync('/proc/self/stat', 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * The waited-for children's CPU time in a /proc/<pid>/stat line: cutime and cstime (fields 16
 * and 17), in the clock ticks /proc counts in (USER_HZ, 100 a second on x86 and ARM).
 */
export function childrenCpuOf(stat: string): CpuTime | undefined {
  // The command name (field 2) is in parentheses and may hold spaces and parentheses itself.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [cutime, cstime] = [Number(fields[13]), Number(fields[14])];
  return Number.isInteger(cutime) && Number.isInteger(cstime) ? { totalMs: (cutime + cstime) * 10, systemMs: cstime * 10 } : undefined;
}

/** The CPU time spent between two readings of waitedChildrenCpu. */
export function cpuSpent(before: CpuTime, after: CpuTime): CpuTime {
  return { totalMs: after.totalMs - before.totalMs, systemMs: after.systemMs - before.systemMs };
}

const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** Runs a command `runs` times in a fresh process; its median wall and CPU time and its peak memory. */
function measure(command: string, args: readonly string[], runs = RUNS, env: NodeJS.ProcessEnv = {}): Measurement {
  return measureEach(command, args, runs, [env])[0];
}

/**
 * `measure` in each of several environments (extra variables; one set to undefined is removed),
 * the environments taking turns run by run, so that a slower minute of the machine falls on
 * each alike.
 */
function measureEach(command: string, args: readonly string[], runs: number, envs: readonly NodeJS.ProcessEnv[]): Measurement[] {
  const samples = envs.map(() => ({ walls: [] as number[], cpus: [] as CpuTime[], peakKb: 0 }));
  for (let i = 0; i < runs; i++) {
    envs.forEach((env, e) => {
      const sample = samples[e];
      const cpuBefore = waitedChildrenCpu();
      const started = process.hrtime.bigint();
      const run = spawnSync(command, args, { cwd: projectRoot(), encoding: 'utf8', env: { ...process.env, HOMELAB_REPORT_MAX_RSS: '1', ...env } });
      sample.walls.push(Number(process.hrtime.bigint() - started) / 1e6);
      const cpuAfter = waitedChildrenCpu();
      if (cpuBefore !== undefined && cpuAfter !== undefined) sample.cpus.push(cpuSpent(cpuBefore, cpuAfter));
      if (run.status !== 0 && run.status !== 1) throw new Error(`${command} ${args.join(' ')} failed (${run.status}):\n${run.stderr}`);
      sample.peakKb = Math.max(sample.peakKb, Number(/max RSS: (\d+) KB/.exec(run.stderr)?.[1] ?? 0));
    });
  }
  return samples.map(({ walls, cpus, peakKb }) => ({
    ms: median(walls),
    cpu: cpus.length === runs ? { totalMs: median(cpus.map((cpu) => cpu.totalMs)), systemMs: median(cpus.map((cpu) => cpu.systemMs)) } : undefined,
    peakMb: peakKb > 0 ? peakKb / 1024 : undefined,
  }));
}

/**
 * PATH as the operator's shell has it. `npm run bench` puts its own entries in front (each
 * folder's node_modules/.bin up to the root, then npm's node-gyp-bin; a block per nested npm
 * run), so an npm started from here would itself run on the project's pinned Node.js; typed in
 * a shell, npm runs on the system's, and only the command it starts on the pinned one.
 */
function shellPath(): string {
  const dirs = (process.env.PATH ?? '').split(delimiter);
  let npmEntries = 0;
  for (let i = 0; i < dirs.length && /node_modules[\\/]\.bin$|node-gyp-bin$/.test(dirs[i]); i++) if (/node-gyp-bin$/.test(dirs[i])) npmEntries = i + 1;
  return dirs.slice(npmEntries).join(delimiter);
}

/** The version of the `node` a PATH finds. */
function nodeOn(path: string): string {
  return spawnSync('node', ['--version'], { encoding: 'utf8', env: { ...process.env, PATH: path } }).stdout?.trim() || 'none found';
}

/** The platform fixture (three environments) plus `count` apps and the nodes to run them; every tenth depends on the one before. */
function configWithApps(count: number): string {
  const config = parse(readFileSync(join(projectRoot(), 'test', 'fixtures', 'platform.yaml'), 'utf8'));
  for (let i = 1; i <= Math.ceil(count / 40); i++) config.nodes[`bench-${i}`] = { role: 'worker', cpu: 8, memory: '32Gi' };
  for (let i = 1; i <= count; i++) {
    const name = `app-${String(i).padStart(3, '0')}`;
    config.apps[name] = {
      image: `ghcr.io/example/${name}:1.0.${i}`,
      ports: { http: 8080 },
      probes: { readiness: { http: { port: 'http', path: '/healthz' } } },
      env: { APP_INDEX: String(i) },
      volume: { size: '1Gi', mountPath: '/data' },
      resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
      dependsOn: i % 10 === 0 ? [`app-${String(i - 1).padStart(3, '0')}`] : [],
    };
  }
  return stringify(config);
}

const FLOOR_SCRIPT = `
const { App, Chart } = require('cdk8s');
const app = new App({ outdir: process.argv[1] });
new Chart(app, 'empty');
app.synth();
`;

interface LineOptions {
  /** The target the wall time is held to. */
  readonly targetMs?: number;
  /** How many processes the measured command started: the figures are then per process. @default 1, the command's own */
  readonly processes?: number;
}

function line(label: string, m: Measurement, options: LineOptions = {}): string {
  const { targetMs, processes = 1 } = options;
  const figure = (ms: number, width: number) => (ms / processes).toFixed(processes === 1 ? 0 : 2).padStart(width);
  const verdict = targetMs === undefined ? '' : `  target ${targetMs} ms: ${m.ms <= targetMs ? 'met' : 'MISSED'}`;
  const cpu = m.cpu === undefined ? '' : `  cpu ${figure(m.cpu.totalMs, 6)} ms (sys ${figure(m.cpu.systemMs, 5)})`;
  const memory = m.peakMb === undefined ? '' : `  peak ${m.peakMb.toFixed(0)} MB`;
  return `  ${label.padEnd(52)} ${figure(m.ms, 6)} ms${cpu}${memory}${verdict}${processes === 1 ? '' : '  each'}`;
}

function benchmark(options: { tests: boolean }): void {
  const root = projectRoot();
  const work = join(root, '.bench');
  mkdirSync(work, { recursive: true });
  const dir = mkdtempSync(join(work, 'run-'));
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  try {
    // Once, so that the runs below measure synthesis and not the first build of dist/.
    spawnSync(process.execPath, [join(root, 'bin', 'run.cjs'), '--build'], { cwd: root });
    const out = join(dir, 'k8s');
    const shell = { PATH: shellPath() };
    // Where the shell sets NODE_EXTRA_CA_CERTS (for a company's TLS proxy, say), Node.js 20, which
    // npm runs on, parses the certificates at every start: ~35 ms for a system's bundle of ~150
    // (`node -e 0` 63 against 28 ms); Node.js 26, which runs the commands, parses them only for a
    // TLS connection. So npm's share of every `npm run` depends on it: each is measured both ways.
    const certificates = process.env.NODE_EXTRA_CA_CERTS
      ? [
          { env: {}, label: ', NODE_EXTRA_CA_CERTS set' },
          { env: { NODE_EXTRA_CA_CERTS: undefined }, label: ', NODE_EXTRA_CA_CERTS unset' },
        ]
      : [{ env: {}, label: '' }];
    const npmEnvs = certificates.map(({ env }) => ({ ...shell, ...env }));
    /** An npm command as typed in a shell (npm on the shell's node), a line for each way of measuring it. */
    const npmRun = (label: string, args: readonly string[], targetMs?: number) =>
      measureEach(npm, args, RUNS, npmEnvs).forEach((m, i) => console.log(line(`${label}${certificates[i].label}`, m, { targetMs })));
    // npm runs on the shell's node; the scripts it starts find the project's first (README).
    const scripts = nodeOn([join(root, 'node_modules', '.bin'), shell.PATH].join(delimiter));
    console.log(
      `median of ${RUNS} runs, each a fresh process: wall time from start to exit, and where the system tells it the CPU time of the command and the processes it waited for (npm on Node.js ${nodeOn(shell.PATH)}, its scripts on ${scripts}; homelab.yaml):`,
    );
    const floorDir = join(dir, 'floor');
    console.log(line(`floor: node ${process.version}, load cdk8s, one empty chart`, measure(process.execPath, ['-e', FLOOR_SCRIPT, floorDir])));
    // What one of the suite's processes costs the machine before it does anything: the floor for
    // the tests, as the one above is for the synths. A shell starts them, as the scripts under test do.
    if (existsSync('/bin/sh')) {
      const loop = `i=0; while [ $i -lt ${FLOOR_PROCESSES} ]; do /bin/sh -c :; i=$((i + 1)); done`;
      console.log(line('floor for the tests: a shell starting a process', measure('/bin/sh', ['-c', loop]), { processes: FLOOR_PROCESSES }));
    }
    // npm starting a script that does nothing to speak of: the part of each `npm run` below that is npm's.
    npmRun('npm itself: npm run env', ['run', '--silent', 'env']);
    // The output directory is written once, so that the runs measure the usual re-synth.
    spawnSync(process.execPath, [join(root, 'bin', 'run.cjs'), 'synth', '--out', out, '--quiet'], { cwd: root });
    npmRun('npm run synth', ['run', '--silent', 'synth', '--', '--out', out, '--quiet'], TARGETS.synth);
    npmRun('npm run synth -- --check', ['run', '--silent', 'synth', '--', '--out', out, '--check', '--quiet'], TARGETS.check);
    npmRun('npm run diff', ['run', '--silent', 'diff'], TARGETS.diff);
    npmRun('npm run synth -- --help', ['run', '--silent', 'synth', '--', '--help'], TARGETS.help);
    // As `npm run synth` runs it: with its script's Node.js options.
    const synthArgs = npmCommandArgs('synth', root);
    console.log(`own apps on the platform fixture (three environments), node ${synthArgs.map((arg) => relative(root, arg) || arg).join(' ')} (Node.js ${process.version}):`);
    const results = APP_COUNTS.map((count) => {
      const file = join(dir, `apps-${count}.yaml`);
      writeFileSync(file, configWithApps(count));
      const appsOut = join(dir, `k8s-${count}`);
      const args = [...synthArgs, '--config', file, '--out', appsOut, '--docs', join(dir, `docs-${count}.md`), '--quiet'];
      spawnSync(process.execPath, args, { cwd: root });
      const m = measure(process.execPath, args, count >= 800 ? 3 : RUNS);
      console.log(line(`${count} apps`, m, { targetMs: count === 800 ? TARGETS.apps800 : undefined }));
      return { count, m };
    });
    for (let i = 1; i < results.length; i++) {
      const [a, b] = [results[i - 1], results[i]];
      console.log(`  ${a.count} -> ${b.count} apps: ${((b.m.ms - a.m.ms) / (b.count - a.count)).toFixed(2)} ms per added app`);
    }
    if (options.tests) {
      const tests = measure(npm, ['test', '--silent'], 1, { ...shell, HOMELAB_REPORT_MAX_RSS: undefined });
      console.log(line('npm test (the whole suite, once)', tests, { targetMs: TARGETS.tests }));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const BENCH_COMMAND: CommandSpec = {
  usage: 'npm run bench -- [--no-tests]',
  description:
    'Measures what the operator waits for, each as a fresh process against its target: npm run synth of homelab.yaml,\n' +
    `--check, diff and --help, synths with ${APP_COUNTS.join(', ')} own apps, and the test suite once; with the floors for reference\n` +
    '(cdk8s alone; a process started by a shell), the CPU time and its system share beside the wall time (Linux), and each npm run\n' +
    'also without NODE_EXTRA_CA_CERTS where the shell sets it.',
  options: {
    'no-tests': { type: 'boolean', description: 'skip timing the test suite (it takes the longest)' },
  },
  exitStatus: ['0  measured (a missed target is reported, not an error)', '2  usage error'],
};

export function main(argv: readonly string[]): number {
  return runCommand(() => {
    const parsed = parseCommandLine(BENCH_COMMAND, argv);
    if (!parsed) return 0;
    benchmark({ tests: parsed.values['no-tests'] !== true });
    return 0;
  });
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
