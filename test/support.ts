/** Shared helpers for the tests: the fixture configs, synthesis (once per worker), and reading output trees. */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parse } from 'yaml';
import { parseConfig } from '../lib/model/config/load';
import { main } from '../main';
import { App } from 'cdk8s';
import { BUILTIN_CATALOG } from '../charts/catalog';
import { Catalog, defineCatalog, ServiceEntry } from '../lib/model/catalog';
import { EnvironmentConfig, environmentSchema } from '../lib/model/config/environment';
import { Checkpoint, SERVICE_ACCOUNT_DIR } from '../lib/model/checkpoint';
import { Layer } from '../lib/model/layers';
import type { NetworkPolicyProvider } from '../lib/model/network';
import { Platform } from '../lib/model/platform';
import { HomelabService } from '../lib/model/service';
import { buildPlatform as buildPlatformOf, SynthesizedEnvironment, synthesizePlatform } from '../lib/output/synthesize';
import { documentsOf } from '../lib/tools/lint/tree';
import { emitYaml } from '../lib/util/yaml-emitter';
import { GPU_LABELS } from '../lib/model/gpu';
import { npmCommandArgs } from '../lib/util/npm-scripts';
import { projectRoot } from '../lib/util/project';
import { UserError } from '../lib/util/errors';
import { expect } from 'vitest';
import { tempDir } from './temp-dirs';

export { tempDir };

export const ROOT = projectRoot();
/** The operator's config: only the invariants and the checks of the committed output read it. */
export const OPERATOR_CONFIG = join(ROOT, 'homelab.yaml');
/** The operator's config as `npm run synth` names it in an error (an edit the tests meet before synth does). */
export const OPERATOR_CONFIG_NAME = relative(process.cwd(), OPERATOR_CONFIG);
export const FIXTURES = join(__dirname, 'fixtures');
/** The platform fixture's file, for the commands that read a config file. */
export const PLATFORM_FIXTURE = join(FIXTURES, 'platform.yaml');

/**
 * The fixture configs, one per scenario: `platform` (three environments, every built-in service,
 * two apps: what most construct tests start from), `small` (one node, Argo CD and Longhorn).
 */
export type FixtureName = 'platform' | 'small';

const fixtureTexts = new Map<FixtureName, string>();
export function fixtureText(name: FixtureName): string {
  let text = fixtureTexts.get(name);
  if (text === undefined) {
    text = readFileSync(join(FIXTURES, `${name}.yaml`), 'utf8');
    fixtureTexts.set(name, text);
  }
  return text;
}

const fixtureObjects = new Map<FixtureName, Record<string, any>>();
/** A fixture as a plain object, to change into a variant (a fresh copy each call: parsed once, cloned). */
export function fixtureObject(name: FixtureName): Record<string, any> {
  let parsed = fixtureObjects.get(name);
  if (parsed === undefined) {
    parsed = parse(fixtureText(name)) as Record<string, any>;
    fixtureObjects.set(name, parsed);
  }
  return structuredClone(parsed);
}

/** The platform fixture's text, which most construct tests start from. */
export function platformText(): string {
  return fixtureText('platform');
}

/** The platform fixture as a plain object, to change into a variant. */
export function platformObject(): Record<string, any> {
  return fixtureObject('platform');
}

/**
 * A variant's config as YAML text, by the product's own emitter (test/yaml-emitter.test.ts holds
 * that the `yaml` package reads it back as the value): several times faster than the `yaml`
 * package's stringify, for the hundreds of variants the tests write.
 */
export function toYamlText(value: unknown): string {
  return emitYaml(value);
}

/** Parses a config text against the built-in catalog (or another). */
export function parseText(text: string, file = 'test.yaml', catalog: Catalog = BUILTIN_CATALOG) {
  return parseConfig(text, file, catalog);
}

const synthesized = new Map<Catalog, Map<string, readonly Synthesized[]>>();
/** What a synthesis of a config is kept under: its text and the folder the files it names are read from (its file's name changes nothing else). */
const synthesisKey = (text: string, file: string) => `${dirname(resolve(file))}\0${text}`;
/**
 * Every environment of a config text, synthesized in-process once per test worker: the results
 * are shared, so treat them as read-only.
 */
export function synthesizeText(text: string, catalog: Catalog = BUILTIN_CATALOG): SynthesizedEnvironment[] {
  return synthesizePlatforms(text, catalog).map(({ env }) => env);
}

/** The platform fixture, synthesized once per test worker (read-only). */
export function synthesizePlatformFixture(): SynthesizedEnvironment[] {
  return synthesizeText(platformText());
}

/** The library's buildPlatform, with the built-in catalog by default. */
export function buildPlatform(scope: App, environment: string, config: EnvironmentConfig, catalog: Catalog = BUILTIN_CATALOG): Platform {
  return buildPlatformOf(scope, environment, config, catalog);
}

/** The problems the environment schema finds in one environment's config (with a domain and Git repository if none is given). */
export function environmentIssues(raw: Record<string, unknown>, catalog: Catalog = BUILTIN_CATALOG): { path: string; message: string }[] {
  const result = environmentSchema(catalog).safeParse({
    domain: 'home.example.net',
    git: { repoURL: 'https://git.example.net/homelab.git', revision: 'main' },
    ...raw,
  });
  return result.success ? [] : result.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message }));
}

/**
 * An empty platform to create services in by hand: its catalog is empty, so synthesis adds
 * no service of its own (no final verification).
 */
export function emptyPlatform(scope: App, environment: string, config: EnvironmentConfig): Platform {
  return new Platform(scope, environment, config, defineCatalog([]));
}

/**
 * Every environment of a config text built and synthesized, with the platform (and so
 * the services' declarations: secret needs ...) next to the output it produced. Once per test
 * worker and config, shared and read-only; `fresh` synthesizes anew (to compare two runs, or
 * for a config seen once). `file` is the name a problem of the config is reported under, and
 * the folder of the files it names (@default `test.yaml`, in the working directory).
 */
export function synthesizePlatforms(text: string, catalog: Catalog = BUILTIN_CATALOG, { fresh = false, file = 'test.yaml' } = {}): readonly Synthesized[] {
  const byText = synthesized.get(catalog) ?? new Map<string, readonly Synthesized[]>();
  synthesized.set(catalog, byText);
  const key = synthesisKey(text, file);
  let result = fresh ? undefined : byText.get(key);
  if (!result) {
    const parsedConfig = parseConfig(text, file, catalog);
    result = [...parsedConfig.environments].map(([name, config]) => {
      const app = new App({ outdir: '/dev/null' });
      const platform = buildPlatform(app, name, config, catalog);
      return { config, platform, env: synthesizePlatform(app, platform) };
    });
    if (!fresh) byText.set(key, result);
  }
  return result;
}

const synthesizedOne = new Map<Catalog, Map<string, Synthesized>>();
/**
 * One environment of a config text built and synthesized, as synthesizePlatforms gives it (once
 * per test worker, config and environment, shared and read-only; `fresh` synthesizes anew): a
 * test that reads one environment of a variant does not pay for the others. Synthesis treats
 * each environment alone (what `synth --env` does); the whole config is still parsed, so an
 * error in another environment's settings is still found.
 */
export function synthesizeEnvironment(text: string, environment: string, catalog: Catalog = BUILTIN_CATALOG, { fresh = false } = {}): Synthesized {
  const whole = fresh ? undefined : synthesized.get(catalog)?.get(synthesisKey(text, 'test.yaml'))?.find((s) => s.env.environment === environment);
  if (whole) return whole;
  const byKey = synthesizedOne.get(catalog) ?? new Map<string, Synthesized>();
  synthesizedOne.set(catalog, byKey);
  const key = `${environment}\0${text}`;
  let result = fresh ? undefined : byKey.get(key);
  if (!result) {
    const config = parseConfig(text, 'test.yaml', catalog).environments.get(environment);
    if (!config) throw new Error(`no environment ${environment} in the config`);
    const app = new App({ outdir: '/dev/null' });
    const platform = buildPlatform(app, environment, config, catalog);
    result = { config, platform, env: synthesizePlatform(app, platform) };
    if (!fresh) byKey.set(key, result);
  }
  return result;
}

/** One environment as synthesized, with the config and the platform (its declarations) it came from. */
export interface Synthesized {
  readonly config: EnvironmentConfig;
  readonly platform: Platform;
  readonly env: SynthesizedEnvironment;
}

/** A copy of a synthesized environment with some of its written files changed (to show an invariant failing); the original stays as it is. */
export function withFiles(s: Synthesized, change: (files: Map<string, string>) => void): Synthesized {
  const files = new Map(s.env.files);
  change(files);
  // A changed file is read from its text.
  const manifests = new Map([...s.env.manifests].filter(([path]) => files.get(path) === s.env.files.get(path)));
  return { ...s, env: { ...s.env, files, manifests } };
}

/** The built-in catalog with one more entry, placed just before or just after a built-in one (where its services are created). */
export function catalogWith(entry: ServiceEntry<any, any>, at: { before: ServiceEntry<any, any> } | { after: ServiceEntry<any, any> }): Catalog {
  const entries = [...BUILTIN_CATALOG.entries];
  const index = 'before' in at ? entries.indexOf(at.before) : entries.indexOf(at.after) + 1;
  entries.splice(index, 0, entry);
  return defineCatalog(entries);
}

/**
 * Stands in for the network-policies service in a platform built by hand: its presence makes
 * synthesis derive every namespace's NetworkPolicies.
 */
export class PolicyProvider extends HomelabService implements NetworkPolicyProvider {
  readonly apiServerSources = ['0.0.0.0/0'];

  constructor(scope: Platform) {
    super(scope, 'policy-provider', {}, { layer: Layer.SECURITY, namespace: 'policy-provider' });
    new Checkpoint(this, 'checkpoint', { description: 'test double', image: 'docker.io/library/busybox:1.37.0', script: 'true' });
  }
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

type Documents = { path: string; manifest: Manifest }[];
/** An environment's files; where it was synthesized in this process, the manifests they hold as data too. */
type Output = Pick<SynthesizedEnvironment, 'files'> & Partial<Pick<SynthesizedEnvironment, 'manifests'>>;
/** Per environment, each file's documents (manifestsOf and maybeManifestAt share them). */
const documentsByFile = new WeakMap<Output, Map<string, Documents>>();
const allDocuments = new WeakMap<Output, Documents>();

/**
 * Manifests frozenDocuments has frozen whole. A kept manifest comes from the render memo with its
 * top level and metadata frozen and what is below them not, and the memo shares it between
 * synths, so only a manifest is looked up here (one lookup each, not one per object below it).
 */
const frozenManifests = new WeakSet<object>();

function freezeAll(value: object): void {
  Object.freeze(value);
  for (const key in value) {
    const child = (value as Record<string, unknown>)[key];
    if (typeof child === 'object' && child !== null) freezeAll(child);
  }
}

/** Shared documents are frozen: a test that changes one fails where it does, not another test later. */
function frozenDocuments(documents: Documents): Documents {
  for (const document of documents) {
    if (!frozenManifests.has(document.manifest)) {
      frozenManifests.add(document.manifest);
      freezeAll(document.manifest);
    }
    Object.freeze(document);
  }
  Object.freeze(documents);
  return documents;
}

/**
 * The documents of one file of an environment (none if it wrote no such file), frozen: the
 * manifest the synth kept for it, which is what its YAML reads back as
 * (test/yaml-emitter.test.ts), or else its text parsed, once.
 */
function documentsIn(env: Output, path: string): Documents {
  let files = documentsByFile.get(env);
  if (!files) {
    files = new Map();
    documentsByFile.set(env, files);
  }
  let documents = files.get(path);
  if (!documents) {
    const text = env.files.get(path);
    const kept = env.manifests?.get(path) as Manifest | undefined;
    documents = frozenDocuments(text === undefined ? [] : kept !== undefined ? [{ path, manifest: kept }] : (documentsOf(new Map([[path, text]])) as Documents));
    files.set(path, documents);
  }
  return documents;
}

/**
 * Every Kubernetes document of one environment with the path of its file, read once per
 * environment and frozen at run time (copy a manifest, or the list, before changing it; the
 * type stays mutable so that the tests pass these lists on without casts).
 */
export function manifestsOf(env: Output): Documents {
  let manifests = allDocuments.get(env);
  if (!manifests) {
    manifests = [...env.files.keys()].flatMap((path) => documentsIn(env, path));
    Object.freeze(manifests);
    allDocuments.set(env, manifests);
  }
  return manifests;
}

/**
 * The tries a retry loop reads from its Job's env (`"${VARIABLE:?…}"` in the loop, a number in
 * the env), for every Job container of the environments whose script has that loop, replays in
 * the verification included: each with its file, and NaN where the env lacks the variable.
 */
export function retryTries(envs: readonly Output[], variable: string): { path: string; tries: number }[] {
  return envs.flatMap((env) =>
    manifestsOf(env)
      .filter(({ manifest }) => manifest.kind === 'Job')
      .flatMap(({ path, manifest }) =>
        (manifest.spec.template.spec.containers as { command?: string[]; env?: { name: string; value?: string }[] }[])
          .filter((container) => container.command?.at(-1)?.includes(`"\${${variable}:?`))
          .map((container) => ({ path, tries: Number(container.env?.find((e) => e.name === variable)?.value) })),
      ),
  );
}

/**
 * The worst case of a check script made of clock-deadline loops (`deadline=$(( $(date +%s) + N ))`
 * right before an `until`/`while` loop whose call has `--max-time C` and whose pause is
 * `sleep P`: N + P + C, the last check passing just before the deadline) and retried calls
 * (retriedCurlCalls: (R + 1) × M + R × D), every call at its limit; with how many of each it
 * found, so that a test sees a loop of another shape go uncounted.
 */
export function deadlineLoopsWorstCase(script: string): { seconds: number; loops: number; retried: number } {
  const loops = [...script.matchAll(/^\s*deadline=\$\(\( \$\(date \+%s\) \+ (\d+) \)\)\n\s*(?:until|while) [^\n]*--max-time (\d+)[\s\S]*?\bsleep (\d+)\n\s*done$/gm)];
  const retried = retriedCurlCalls(script);
  const seconds =
    loops.reduce((sum, [, wait, call, pause]) => sum + Number(wait) + Number(call) + Number(pause), 0) +
    retried.reduce((sum, call) => sum + (call.retries + 1) * call.maxSeconds + call.retries * call.delaySeconds, 0);
  return { seconds, loops: loops.length, retried: retried.length };
}

/**
 * The curl commands of a script that curl retries (`--retry R`), in order, each with its
 * `--max-time M`, `--retry R` and `--retry-delay D` in whatever order it gives them (NaN where
 * one is missing); one command a line, as the scripts write them.
 */
export function retriedCurlCalls(script: string): { maxSeconds: number; retries: number; delaySeconds: number }[] {
  return [...script.matchAll(/\bcurl\s[^\n]*/g)]
    .map((m) => m[0])
    .filter((command) => /\s--retry \d/.test(command))
    .map((command) => {
      const option = (name: string) => Number(new RegExp(`\\s--${name} (\\d+)\\s`).exec(command)?.[1]);
      return { maxSeconds: option('max-time'), retries: option('retry'), delaySeconds: option('retry-delay') };
    });
}

/**
 * The manifest of one file of an environment (its first document), or undefined if it wrote no
 * such file. Only that file is read: most tests read a few files of the variant they made.
 */
export function maybeManifestAt(env: Output, path: string): Manifest | undefined {
  return documentsIn(env, path)[0]?.manifest;
}

/** The manifest of one file of an environment (its first document); throws if it wrote no such file. */
export function manifestAt(env: Output, path: string): Manifest {
  const manifest = maybeManifestAt(env, path);
  if (manifest === undefined) throw new Error(`no ${path}`);
  return manifest;
}

/** The Helm values of the chart source of a service's Application (`apps/application-<service>.yaml`). */
export function chartValues(env: Output, service: string): any {
  return manifestAt(env, `apps/application-${service}.yaml`).spec.sources.find((source: any) => source.chart).helm.valuesObject;
}

/** Relative path -> text (UTF-8, as the writer writes it) of every file under `dir` (empty map if it does not exist). */
export function readTree(dir: string): Map<string, string> {
  const tree = new Map<string, string>();
  const walk = (current: string) => {
    for (const entry of readdirSync(current).sort()) {
      const path = join(current, entry);
      if (statSync(path).isDirectory()) walk(path);
      else tree.set(relative(dir, path), readFileSync(path, 'utf8'));
    }
  };
  try {
    walk(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return tree;
}

/** A node process in the project's root with extra environment variables; how it ended and what it printed. */
export function runNode(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}

/** Runs the real CLI the way `npm run synth` does (the compiled bundle, rebuilt if the sources changed, with the script's Node.js options). */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): ReturnType<typeof runNode> {
  return runNode([...npmCommandArgs('synth'), ...args], env);
}

/** Runs main() in-process, capturing what it prints. */
export function runMain(args: string[]): { status: number; stdout: string; stderr: string } {
  return captureOutput(() => main(args));
}

/** Collects what the process prints from now on; the returned function stops and gives it. */
function interceptOutput(): () => { stdout: string; stderr: string } {
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write;
  const err = process.stderr.write;
  process.stdout.write = ((chunk: string) => ((stdout += chunk), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => ((stderr += chunk), true)) as typeof process.stderr.write;
  return () => {
    process.stdout.write = out;
    process.stderr.write = err;
    return { stdout, stderr };
  };
}

/** captureOutput for a command whose main function waits (diff, render). */
export async function captureOutputAsync(run: () => Promise<number>): Promise<{ status: number; stdout: string; stderr: string }> {
  const stop = interceptOutput();
  try {
    const status = await run();
    return { status, ...stop() };
  } catch (error) {
    stop();
    throw error;
  }
}

/** Runs a command's main function in-process, capturing what it prints. */
export function captureOutput(run: () => number): { status: number; stdout: string; stderr: string } {
  const stop = interceptOutput();
  try {
    const status = run();
    return { status, ...stop() };
  } catch (error) {
    stop();
    throw error;
  }
}

/** The `--max-time` of the `kube_get` a check script defines: the limit of every API call it makes. */
export function kubeGetMaxSeconds(script: string): number {
  return Number(/^kube_get\(\) \{[^}]*--max-time (\d+)/m.exec(script)![1]);
}

/** `text` as one shell word, in single quotes. */
export function shellQuoted(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * Shell for a fake: counts its calls in `file` (under $FAKE_BIN) and sets `variable` to this
 * call's number, with the shell's own `read` (a fake is called many times a run).
 */
export function fakeCallCount(variable: string, file: string): string {
  return `{ read -r ${variable} < "${file}"; } 2> /dev/null || ${variable}=0; ${variable}=$((${variable} + 1)); echo "$${variable}" > "${file}"`;
}

/**
 * Shell for a fake `curl` answering as the API server does: what `print` (shell) prints, compact
 * JSON, as it is where the call's user agent (`-A`) is not curl's (KUBE_USER_AGENT), else
 * pretty-printed as the server does for curl, Wget and browsers (isPrettyPrint): here a space
 * after every colon and a line per field, which is what breaks matching the compact text.
 */
export function answerAsApiServer(print: string): string {
  return `agent=curl; previous=; for arg; do [ "$previous" != -A ] || agent=$arg; previous=$arg; done
case $agent in
  curl* | Wget* | Mozilla/5.0*) { ${print}
  } | sed 's/":/": /g; s/,"/,\\n"/g' ;;
  *) ${print} ;;
esac`;
}

/** A `sleep` that returns at once, so retry loops run in no time. */
export const FAKE_SLEEP = 'exit 0';
/** FAKE_SLEEP that also logs `sleep <its arguments>` to $FAKE_BIN/calls, where the fake curls of the route checks log theirs: the pauses between the calls. */
export const FAKE_SLEEP_LOGGED = 'echo "sleep $*" >> "$FAKE_BIN/calls"';
/**
 * A `date` one minute later on every call (FAKE_CLOCK_STEP seconds where set), so `date +%s`
 * deadlines expire after a few loops.
 */
export const FAKE_CLOCK = '{ read -r now < "$FAKE_BIN/clock"; } 2>/dev/null || now=${FAKE_NOW:-1700000000}\necho $((now + ${FAKE_CLOCK_STEP:-60})) > "$FAKE_BIN/clock"\necho "$now"';

export interface FakeCommandRun<T> {
  status: number | null;
  stdout: string;
  stderr: string;
  /** What `collect` read from the fakes' directory before it was removed. */
  collected: T;
}

/**
 * The command with the fakes defined as shell functions ahead of the script, when it is a
 * script run by `sh -c` (every checkpoint's shape): a call from the script then costs a fork
 * instead of starting a shell from a file, a tenth of the CPU time (checkpoint tests make
 * thousands). Each function runs its body as the file would: in a subshell (`exit` ends only
 * the call), without the script's `-e`/`-u`. The definitions are evaluated from the
 * environment on the script's first line, so the script's line numbers stay as they are.
 * Anything else (another interpreter, a call through `xargs` or a nested shell) finds the
 * files on PATH.
 */
function withFakeFunctions(command: readonly string[], fakes: Readonly<Record<string, string>>): { command: string[]; env: Record<string, string> } {
  const [shell, flags, script, ...rest] = command;
  const names = Object.keys(fakes);
  if (names.length === 0 || !['sh', '/bin/sh'].includes(shell) || !/^-[a-z]*c[a-z]*$/.test(flags ?? '') || script === undefined) return { command: [...command], env: {} };
  const functions = Object.entries(fakes).map(([name, body]) => `${name}() (\nset +eu\n${body}\n)`);
  return { command: [shell, flags, `eval "$HOMELAB_TEST_FAKE_FUNCTIONS"; ${script}`, ...rest], env: { HOMELAB_TEST_FAKE_FUNCTIONS: functions.join('\n') } };
}

type FakeContainer = { command: string[]; env?: { name: string; value?: string }[] };
type FakeCommandOptions<T> = {
  env?: Record<string, string>;
  prepare?: (bin: string) => void;
  collect?: (bin: string) => T;
  /**
   * Fakes that are only programs on PATH, not also shell functions: where the script signals the
   * process its call started, which is then the fake's own (a function's body runs in a subshell
   * of the call's). @default none
   */
  programs?: readonly string[];
};

/**
 * Runs a container's command (a checkpoint script) locally with some commands replaced by
 * fakes — a fake `curl` answering canned responses, an instant `sleep` — as shell functions
 * (withFakeFunctions) and as scripts found first on PATH. The fakes and the script see the
 * fakes' directory as $FAKE_BIN; the container's plain env entries are set as they would be
 * in the pod, and its API token volume is mounted: the script finds a token and a CA where
 * the pod's are (SERVICE_ACCOUNT_DIR, here a directory of the fakes').
 */
export function runWithFakeCommands<T = undefined>(
  container: FakeContainer,
  fakes: Readonly<Record<string, string>>,
  options: FakeCommandOptions<T> = {},
): FakeCommandRun<T> {
  const run = withFakes(container, fakes, options);
  try {
    const result = spawnSync(run.command[0], run.command.slice(1), { encoding: 'utf8', env: run.env });
    return run.result(result.status, result.stdout, result.stderr);
  } finally {
    run.remove();
  }
}

/**
 * runWithFakeCommands in the background, for a script that waits out a real time limit (curl's,
 * against a server that keeps the connection open): the tests before the one that awaits it
 * run meanwhile, instead of their worker waiting idle. A program that cannot start is an exit
 * status of null (spawnSync's too), the reason appended to stderr.
 */
export function startWithFakeCommands<T = undefined>(
  container: FakeContainer,
  fakes: Readonly<Record<string, string>>,
  options: FakeCommandOptions<T> = {},
): Promise<FakeCommandRun<T>> {
  const run = withFakes(container, fakes, options);
  return new Promise((resolve, reject) => {
    const child = spawn(run.command[0], run.command.slice(1), { env: run.env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    let settled = false;
    // Once: a program that cannot start reports an error and then closes.
    const settle = (status: number | null, why = '') => {
      if (settled) return;
      settled = true;
      try {
        resolve(run.result(status, stdout, stderr + why));
      } catch (error) {
        reject(error);
      } finally {
        run.remove();
      }
    };
    child.on('error', (error) => settle(null, error.message));
    child.on('close', (status) => settle(status));
  });
}

/** The fakes' directory made, and the command and environment that run the container's command with them. */
function withFakes<T>(container: FakeContainer, fakes: Readonly<Record<string, string>>, options: FakeCommandOptions<T>) {
  const bin = tempDir('homelab-fakes-');
  try {
    for (const [name, body] of Object.entries(fakes)) writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    const account = join(bin, 'serviceaccount');
    mkdirSync(account);
    writeFileSync(join(account, 'token'), FAKE_API_TOKEN);
    writeFileSync(join(account, 'ca.crt'), '');
    options.prepare?.(bin);
    const podEnv = Object.fromEntries((container.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
    const { command, env } = withFakeFunctions(
      // Scripts name the directory once, as the word after `sa=` (lib/model/checkpoint.ts): one word here too, whatever TMPDIR holds.
      container.command.map((part) => part.replaceAll(SERVICE_ACCOUNT_DIR, shellQuoted(account))),
      Object.fromEntries(Object.entries(fakes).filter(([name]) => !options.programs?.includes(name))),
    );
    return {
      command,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, FAKE_BIN: bin, ...env, ...podEnv, ...options.env },
      result: (status: number | null, stdout: string, stderr: string): FakeCommandRun<T> => ({ status, stdout, stderr, collected: options.collect?.(bin) as T }),
      remove: () => rmSync(bin, { recursive: true, force: true }),
    };
  } catch (error) {
    rmSync(bin, { recursive: true, force: true });
    throw error;
  }
}

/** The API token runWithFakeCommands mounts (as kubelet writes one: no final newline). */
export const FAKE_API_TOKEN = 'fake-api-token';

/** The text of a file a fake wrote in its directory (`$FAKE_BIN`), or '' if it never wrote one. */
export function readFakeFile(bin: string, name: string): string {
  const path = join(bin, name);
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
}

/** The UserError lines a promise rejects with (fails the test if it resolves or rejects otherwise). */
export async function userErrorOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UserError);
  return (error as UserError).problems.join('\n');
}

/** The label every GPU workload is placed by, as discovery sets it on a node with `gpus` GPUs (lib/model/gpu.ts). */
export function discoveredGpuLabels(node: { readonly gpus: number }): Readonly<Record<string, string>> {
  return node.gpus > 0 ? { [GPU_LABELS.present]: 'true' } : {};
}

/** What parsing a config text reports, one problem a line; empty when it is valid. */
export function configProblems(text: string): string {
  try {
    parseText(text);
    return '';
  } catch (error) {
    return String((error as Error).message);
  }
}

/** A checkpoint run with a recording fake `curl` (runCheckpointRecordingCurl). */
export interface CheckpointRun {
  readonly status: number | null;
  readonly output: string;
  /** Arguments of each curl call, one array per call. */
  readonly calls: string[][];
}

/**
 * Runs a checkpoint Job's script under `sh` with its env (and `env`), a fake `curl` (a shell
 * snippet that sees the arguments as "$@"; every call's arguments are recorded), no-op `sleep`
 * and a clock that jumps a minute per read, so every retry loop ends quickly.
 */
export function runCheckpointRecordingCurl(job: Manifest, fakeCurl: string, env: Record<string, string> = {}): CheckpointRun {
  const curl = `for a in "$@"; do printf '%s\\0' "$a"; done >> "$FAKE_BIN/calls"; printf '\\n' >> "$FAKE_BIN/calls"\n${fakeCurl}`;
  const result = runWithFakeCommands(job.spec.template.spec.containers[0], { curl, sleep: FAKE_SLEEP, date: FAKE_CLOCK }, {
    env,
    collect: (bin) => readFakeFile(bin, 'calls'),
  });
  const calls = result.collected
    .split('\0\n')
    .filter(Boolean)
    .map((call) => call.split('\0'));
  return { status: result.status, output: result.stdout + result.stderr, calls };
}
