/**
 * `npm run bench`: wall time and peak memory of a full synth, the way `npm run synth` runs
 * it (a fresh `node --import tsx main.ts` process each time), for the shipped example and
 * for generated configs with growing numbers of the operator's own apps.
 *
 * Targets (2-core machine): example < 1.5 s; 200 apps < 3 s; time linear in the app count.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { CommandSpec, parseCommandLine, runCommand } from '../lib/tools/cli';

const ROOT = join(__dirname, '..');
const RUNS = 5;
const APP_COUNTS = [50, 100, 200, 400];

interface Sample {
  /** First synth into an empty output directory: every file is new. */
  readonly coldMs: number;
  /** Median of re-synths over the existing output: the edit -> synth loop. */
  readonly warmMs: number;
  readonly peakRssMb: number;
}

/** Child mode: run the CLI in this process and report its peak memory on stderr. */
if (process.argv[2] === '--child') {
  const { main } = require('../main') as typeof import('../main');
  const status = main(process.argv.slice(3));
  process.stderr.write(`BENCH_MAX_RSS_KB=${process.resourceUsage().maxRSS}\n`);
  process.exit(status);
}

function synthOnce(configFile: string, outdir: string): { wallMs: number; rssMb: number } {
  const started = process.hrtime.bigint();
  const run = spawnSync(process.execPath, ['--import', 'tsx', __filename, '--child', '--config', configFile, '--out', outdir, '--quiet'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  if (run.status !== 0) throw new Error(`synth failed:\n${run.stderr}`);
  return { wallMs, rssMb: Number(/BENCH_MAX_RSS_KB=(\d+)/.exec(run.stderr)?.[1]) / 1024 };
}

function measure(configFile: string): Sample {
  // Inside the repository, like k8s/: some machines make many small writes to /tmp slow.
  const dir = mkdtempSync(join(ROOT, '.bench', 'k8s-'));
  try {
    const outdir = join(dir, 'k8s');
    const cold = synthOnce(configFile, outdir);
    const warm = Array.from({ length: RUNS }, () => synthOnce(configFile, outdir));
    const walls = warm.map((s) => s.wallMs).sort((a, b) => a - b);
    return {
      coldMs: cold.wallMs,
      warmMs: walls[Math.floor(walls.length / 2)],
      peakRssMb: Math.max(cold.rssMb, ...warm.map((s) => s.rssMb)),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** How long this machine takes to create `count` small files: the floor of a cold synth. */
function fileCreationMs(count: number): number {
  const dir = mkdtempSync(join(ROOT, '.bench', 'files-'));
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) writeFileSync(join(dir, `f${i}.yaml`), 'x'.repeat(1500));
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  rmSync(dir, { recursive: true, force: true });
  return ms;
}

/** The example config plus `count` apps (and nodes to run them); every tenth depends on the one before it. */
function configWithApps(count: number): string {
  const config = parse(readFileSync(join(ROOT, 'homelab.yaml'), 'utf8'));
  // Enough nodes for the capacity check: 40 apps per 8-core worker.
  for (let i = 1; i <= Math.ceil(count / 40); i++) {
    config.nodes[`bench-${i}`] = { role: 'worker', cpu: 8, memory: '32Gi' };
  }
  for (let i = 1; i <= count; i++) {
    const name = `app-${String(i).padStart(3, '0')}`;
    config.apps[name] = {
      image: `ghcr.io/example/${name}:1.0.${i}`,
      ports: { http: 8080 },
      env: { APP_INDEX: String(i) },
      volume: { size: '1Gi', mountPath: '/data' },
      resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
      dependsOn: i % 10 === 0 ? [`app-${String(i - 1).padStart(3, '0')}`] : [],
    };
  }
  return stringify(config);
}

function row(label: string, sample: Sample, targetMs?: number): string {
  const verdict = targetMs === undefined ? '' : `  target ${targetMs} ms: ${sample.warmMs <= targetMs ? 'met' : 'MISSED'} (warm)`;
  const ms = (n: number) => `${n.toFixed(0).padStart(6)} ms`;
  return `${label.padEnd(24)} ${ms(sample.warmMs)}  ${ms(sample.coldMs)}  ${sample.peakRssMb.toFixed(0).padStart(5)} MB${verdict}`;
}

function benchmark(): void {
  mkdirSync(join(ROOT, '.bench'), { recursive: true });
  console.log(`wall time from process start to exit, all 3 environments; warm = median of ${RUNS} re-synths over the`);
  console.log('existing output (the edit loop), cold = first synth into an empty directory (every file new)');
  console.log(`${''.padEnd(24)} ${'warm'.padStart(9)}  ${'cold'.padStart(9)}  ${'peak RSS'.padStart(8)}`);
  console.log(row('example (homelab.yaml)', measure(join(ROOT, 'homelab.yaml')), 1500));
  const dir = mkdtempSync(join(ROOT, '.bench', 'config-'));
  try {
    const results = APP_COUNTS.map((count) => {
      const file = join(dir, `apps-${count}.yaml`);
      writeFileSync(file, configWithApps(count));
      const sample = measure(file);
      console.log(row(`example + ${count} apps`, sample, count === 200 ? 3000 : undefined));
      return { count, sample };
    });
    // Linear growth: the cost per added app stays about the same as the app count doubles.
    for (let i = 1; i < results.length; i++) {
      const [a, b] = [results[i - 1], results[i]];
      const perApp = (b.sample.warmMs - a.sample.warmMs) / (b.count - a.count);
      console.log(`  ${a.count} -> ${b.count} apps: ${perApp.toFixed(2)} ms per added app (warm)`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // 200 apps write about 3,700 files; a cold synth cannot be faster than creating them.
  console.log(`this machine creates 3,700 small files in ${fileCreationMs(3700).toFixed(0)} ms (the floor of a cold 200-app synth)`);
}

const BENCH_COMMAND: CommandSpec = {
  usage: 'npm run bench',
  description:
    'Measures wall time and peak memory of `npm run synth` (a fresh process per run) for homelab.yaml and for\n' +
    `the example plus ${APP_COUNTS.join(', ')} generated apps, against the targets in scripts/bench.ts. Takes a few minutes.`,
  options: {},
  exitStatus: ['0  measured (a missed target is reported, not an error)', '2  usage error'],
};

if (process.argv[2] !== '--child') {
  const status = runCommand(() => {
    if (!parseCommandLine(BENCH_COMMAND, process.argv.slice(2))) return 0;
    benchmark();
    return 0;
  });
  process.exitCode = status;
}
