/**
 * `npm run bench`: wall time and peak memory of a full synth, the way `npm run synth` runs
 * it (a fresh `node --import tsx main.ts` process each time), for the shipped example and
 * for generated configs with growing numbers of the operator's own apps.
 *
 * Targets (2-core machine): example < 1.5 s; 200 apps < 3 s; time linear in the app count.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';

const ROOT = join(__dirname, '..');
const RUNS = 5;
mkdirSync(join(ROOT, '.bench'), { recursive: true });
const APP_COUNTS = [50, 100, 200, 400];

interface Sample {
  readonly wallMs: number;
  readonly peakRssMb: number;
}

/** Child mode: run the CLI in this process and report its peak memory on stderr. */
if (process.argv[2] === '--child') {
  const { main } = require('../main') as typeof import('../main');
  const status = main(process.argv.slice(3));
  process.stderr.write(`BENCH_MAX_RSS_KB=${process.resourceUsage().maxRSS}\n`);
  process.exit(status);
}

function measure(configFile: string): Sample {
  const samples: Sample[] = [];
  for (let i = 0; i < RUNS; i++) {
    // Inside the repository, like k8s/: some machines make many small writes to /tmp slow.
    const out = mkdtempSync(join(ROOT, '.bench', 'k8s-'));
    const started = process.hrtime.bigint();
    const run = spawnSync(process.execPath, ['--import', 'tsx', __filename, '--child', '--config', configFile, '--out', join(out, 'k8s')], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
    rmSync(out, { recursive: true, force: true });
    if (run.status !== 0) throw new Error(`synth failed:\n${run.stderr}`);
    const rssKb = Number(/BENCH_MAX_RSS_KB=(\d+)/.exec(run.stderr)?.[1]);
    samples.push({ wallMs, peakRssMb: rssKb / 1024 });
  }
  const walls = samples.map((s) => s.wallMs).sort((a, b) => a - b);
  return { wallMs: walls[Math.floor(walls.length / 2)], peakRssMb: Math.max(...samples.map((s) => s.peakRssMb)) };
}

/** The example config plus `count` apps; every tenth depends on the one before it. */
function configWithApps(count: number): string {
  const config = parse(readFileSync(join(ROOT, 'homelab.yaml'), 'utf8'));
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
  const verdict = targetMs === undefined ? '' : sample.wallMs <= targetMs ? `  (target ${targetMs} ms: met)` : `  (target ${targetMs} ms: MISSED)`;
  return `${label.padEnd(28)} ${sample.wallMs.toFixed(0).padStart(6)} ms  ${sample.peakRssMb.toFixed(0).padStart(5)} MB${verdict}`;
}

function benchmark(): void {
  console.log(`median wall time of ${RUNS} runs (process start to exit, all 3 environments) and peak RSS`);
  console.log(row('example (homelab.yaml)', measure(join(ROOT, 'homelab.yaml')), 1500));
  const dir = mkdtempSync(join(tmpdir(), 'bench-config-'));
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
      const perApp = (b.sample.wallMs - a.sample.wallMs) / (b.count - a.count);
      console.log(`  ${a.count} -> ${b.count} apps: ${perApp.toFixed(2)} ms per added app`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] !== '--child') benchmark();
