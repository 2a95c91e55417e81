/** Shared helpers for the tests: the example config, synthesis, and reading output trees. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { parseConfig } from '../lib/model/config/load';
import { main } from '../main';
import { App } from 'cdk8s';
import { buildPlatform } from '../charts/catalog';
import type { Platform } from '../lib/model/platform';
import { HELM_VALUES_FILE, SynthesizedEnvironment, synthesizeEnvironment, synthesizePlatform } from '../lib/output/synthesize';

export const ROOT = join(__dirname, '..');
export const EXAMPLE_CONFIG = join(ROOT, 'homelab.yaml');

export function exampleText(): string {
  return readFileSync(EXAMPLE_CONFIG, 'utf8');
}

/** The example config as a plain object, to mutate into a variant. */
export function exampleObject(): Record<string, any> {
  return parse(exampleText());
}

export function toYamlText(value: unknown): string {
  return stringify(value);
}

/** Synthesizes every environment of a config text in-process. */
export function synthesizeText(text: string): SynthesizedEnvironment[] {
  const config = parseConfig(text, 'test.yaml');
  return [...config.environments].map(([name, env]) => synthesizeEnvironment(name, env));
}

let example: SynthesizedEnvironment[] | undefined;
/** The shipped example, synthesized once per test file. */
export function synthesizeExample(): SynthesizedEnvironment[] {
  example ??= synthesizeText(exampleText());
  return example;
}

/**
 * Every environment of a config text with the platform it was built from, for the
 * services' declarations (secret needs ...) next to the output they produced.
 */
export function synthesizePlatforms(text: string): { platform: Platform; env: SynthesizedEnvironment }[] {
  const config = parseConfig(text, 'test.yaml');
  return [...config.environments].map(([name, envConfig]) => {
    const app = new App({ outdir: '/dev/null' });
    const platform = buildPlatform(app, name, envConfig);
    return { platform, env: synthesizePlatform(app, platform) };
  });
}

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; finalizers?: string[] };
  spec?: any;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  [key: string]: any;
}

/** Every Kubernetes document of one environment with the path of its file. */
export function manifestsOf(env: SynthesizedEnvironment): { path: string; manifest: Manifest }[] {
  return [...env.files]
    .filter(([path]) => !HELM_VALUES_FILE.test(basename(path)))
    .flatMap(([path, content]) => parseAllDocuments(content).map((doc) => ({ path, manifest: doc.toJS() as Manifest })));
}

export function tempDir(prefix = 'homelab-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Relative path -> bytes of every file under `dir` (empty map if it does not exist). */
export function readTree(dir: string): Map<string, string> {
  const tree = new Map<string, string>();
  const walk = (current: string) => {
    for (const entry of readdirSync(current).sort()) {
      const path = join(current, entry);
      if (statSync(path).isDirectory()) walk(path);
      else tree.set(relative(dir, path), readFileSync(path, 'latin1'));
    }
  };
  try {
    walk(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return tree;
}

/** Runs the real CLI (`node --import tsx main.ts`) the way `npm run synth` does. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'main.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Runs main() in-process, capturing what it prints. */
export function runMain(args: string[]): { status: number; stdout: string; stderr: string } {
  return captureOutput(() => main(args));
}

/** Runs a command's main function in-process, capturing what it prints. */
export function captureOutput(run: () => number): { status: number; stdout: string; stderr: string } {
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write;
  const err = process.stderr.write;
  process.stdout.write = ((chunk: string) => ((stdout += chunk), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => ((stderr += chunk), true)) as typeof process.stderr.write;
  try {
    const status = run();
    return { status, stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

/** A `sleep` that returns at once, so retry loops run in no time. */
export const FAKE_SLEEP = 'exit 0';
/** A `date` one minute later on every call, so `date +%s` deadlines expire after a few loops. */
export const FAKE_CLOCK = 'now=$(cat "$FAKE_BIN/clock" 2>/dev/null || echo 1700000000)\necho $((now + 60)) > "$FAKE_BIN/clock"\necho "$now"';

export interface FakeCommandRun<T> {
  status: number | null;
  stdout: string;
  stderr: string;
  /** What `collect` read from the fakes' directory before it was removed. */
  collected: T;
}

/**
 * Runs a container's command (a checkpoint script) locally with some commands replaced by
 * shell scripts — a fake `curl` answering canned responses, an instant `sleep` — found first
 * on PATH. The fakes and the script see the fakes' directory as $FAKE_BIN; the container's
 * plain env entries are set as they would be in the pod.
 */
export function runWithFakeCommands<T = undefined>(
  container: { command: string[]; env?: { name: string; value?: string }[] },
  fakes: Readonly<Record<string, string>>,
  options: { env?: Record<string, string>; prepare?: (bin: string) => void; collect?: (bin: string) => T } = {},
): FakeCommandRun<T> {
  const bin = tempDir('homelab-fakes-');
  try {
    for (const [name, body] of Object.entries(fakes)) writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    options.prepare?.(bin);
    const podEnv = Object.fromEntries((container.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
    const result = spawnSync(container.command[0], container.command.slice(1), {
      encoding: 'utf8',
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, FAKE_BIN: bin, ...podEnv, ...options.env },
    });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr, collected: options.collect?.(bin) as T };
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
}
