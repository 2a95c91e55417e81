/**
 * Hostile and broken config files (docs/adr/0021): keys that would reach a prototype, alias
 * bombs, files too large or endless, bytes that are not UTF-8, strings larger than Kubernetes
 * stores, nesting too deep for the parser. Each is refused by the real command with `error:`
 * lines naming the file and the place, exit status 2, no stack trace, and the output exactly
 * as it was; the process-level cases (a device, a FIFO) run the real CLI.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { deepMerge, hasPath } from '../lib/model/config/merge';
import { CONFIG_LIMITS } from '../lib/model/config/limits';
import { firstInvalidUtf8, readConfigText } from '../lib/model/config/read-file';
import { PLATFORM_DOC_HEADER } from '../lib/output/platform-doc';
import { GENERATED_HEADER } from '../lib/output/output-guard';
import { captureOutputAsync, fixtureObject, fixtureText, parseText, readTree, ROOT, runMain, tempDir, toYamlText } from './support';
import { main as diffMain } from '../scripts/diff';

/** The small fixture with `lines` (already indented) as the overrides of its one environment, `lab`. */
function withLabOverrides(lines: string): string {
  const text = fixtureText('small');
  expect(text).toContain('\n  lab: {}\n');
  return text.replace('\n  lab: {}\n', `\n  lab:\n${lines}\n`);
}

/** The small fixture with one more top-level key (`apps`, which it does not have), as YAML text. */
function withApps(lines: string): string {
  return `${fixtureText('small')}apps:\n${lines}\n`;
}

/** An app of the small fixture (valid as it is) with `env` holding these variables. */
function appWithEnv(env: Record<string, string>): string {
  const config = fixtureObject('small');
  config.apps = { web: { image: 'ghcr.io/example/web:1.0.0', ports: { http: 8080 }, probes: { readiness: { http: { port: 'http' } } }, env, resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '100m', memory: '128Mi' } } } };
  return toYamlText(config);
}

/** Each case: a config text, and what the error lines must say (after `<file>: `). */
const HOSTILE: { name: string; text: () => string | Buffer; expected: (string | RegExp)[] }[] = [
  {
    name: 'an environment override under __proto__ (it redirected every Application to another API server)',
    text: () => withLabOverrides('    __proto__:\n      cluster:\n        server: https://attacker.example.net:6443'),
    expected: ['environments.lab.__proto__: keys named __proto__, constructor or prototype are not allowed'],
  },
  {
    name: 'an app named __proto__ (it was dropped without a word)',
    text: () => withApps('  __proto__:\n    image: ghcr.io/example/web:1.0.0'),
    expected: ['apps.__proto__: keys named __proto__, constructor or prototype are not allowed'],
  },
  {
    name: 'constructor and prototype, deep in the base and inside a list',
    text: () => `${fixtureText('small').replace('    memory: 32Gi\n', '    memory: 32Gi\n    taints:\n      - key: a\n        effect: NoSchedule\n        prototype: x\n')}`.replace('  longhorn:\n', '  longhorn:\n    constructor: {}\n'),
    expected: ['nodes.node-1.taints.0.prototype: keys named', 'services.longhorn.constructor: keys named'],
  },
  {
    name: 'a quoted __proto__ key',
    text: () => withLabOverrides('    "__proto__": {domain: attacker.example.net}'),
    expected: ['environments.lab.__proto__: keys named'],
  },
  {
    name: 'an alias as the key, naming the string __proto__',
    text: () => withLabOverrides('    domain: &key __proto__\n    *key : {domain: attacker.example.net}'),
    expected: ['environments.lab.__proto__: keys named'],
  },
  {
    name: 'a "billion laughs" alias bomb',
    text: () => {
      const lines = ['  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
      for (let i = 1; i <= 9; i++) lines.push(`  a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
      return withApps(lines.join('\n'));
    },
    expected: [/apps\.a\d[.\d]*: with its aliases expanded the config holds more than 1000000 keys and values, the most it may hold \(through the alias \*a\d at line \d+, column \d+\)/],
  },
  {
    name: 'a large string repeated by aliases',
    text: () => withApps(`  a: &big "${'x'.repeat(CONFIG_LIMITS.stringBytes - 1)}"\n  b: [${Array(12).fill('*big').join(', ')}]`),
    expected: [`apps.b.`, `characters of keys and strings, the most it may hold (through the alias *big at line`],
  },
  {
    name: 'an alias to nothing (it was a stack trace from the YAML library)',
    text: () => withLabOverrides('    domain: *nowhere'),
    expected: [/environments\.lab\.domain: the alias \*nowhere at line \d+, column \d+ names no anchor \(&nowhere\) before it/],
  },
  {
    name: 'an alias inside the value it names (a circular value)',
    text: () => withLabOverrides('    nodes: &nodes {node-2: *nodes}'),
    expected: [/environments\.lab\.nodes\.node-2: the alias \*nodes at line \d+, column \d+ is inside the value it names/],
  },
  {
    name: 'a deeply nested flow list (it crashed the parser with a RangeError)',
    text: () => withLabOverrides(`    nodes: ${'['.repeat(10_000)}${']'.repeat(10_000)}`),
    expected: [/line \d+, column \d+: mappings and lists nested more than 64 levels deep, the most a config may be/],
  },
  {
    name: 'deeply nested block lists on one line (the parser ran out of memory)',
    text: () => withLabOverrides(`    nodes:\n      ${'- '.repeat(10_000)}x`),
    expected: [/line \d+, column \d+: mappings and lists nested more than 64 levels deep/],
  },
  {
    name: 'nesting that only aliases make too deep',
    text: () => {
      const lines = ['  l0: &l0 [x]'];
      for (let i = 1; i <= CONFIG_LIMITS.depth; i++) lines.push(`  l${i}: &l${i} [*l${i - 1}]`);
      return withApps(lines.join('\n'));
    },
    expected: [/apps\.l\d+(\.0)+: mappings and lists nested more than 64 levels deep, the most a config may be \(through the alias \*l\d+ at line \d+, column \d+\)/],
  },
  {
    name: 'a string larger than a Kubernetes object holds (a 5 MB value was accepted)',
    text: () => appWithEnv({ BLOB: 'x'.repeat(CONFIG_LIMITS.stringBytes + 1) }),
    expected: [`apps.web.env.BLOB: expected a string of at most ${CONFIG_LIMITS.stringBytes} bytes (1 MiB, the most a Kubernetes object such as a ConfigMap or Secret holds), received ${CONFIG_LIMITS.stringBytes + 1} bytes at line`],
  },
  {
    name: 'a string over the limit in UTF-8 bytes, under it in characters',
    text: () => appWithEnv({ BLOB: 'é'.repeat(CONFIG_LIMITS.stringBytes / 2 + 1) }),
    expected: [`apps.web.env.BLOB: expected a string of at most ${CONFIG_LIMITS.stringBytes} bytes`, `received ${CONFIG_LIMITS.stringBytes + 2} bytes`],
  },
  {
    name: 'a file over the size limit',
    text: () => `${fixtureText('small')}${'#'.repeat(CONFIG_LIMITS.fileBytes)}\n`,
    expected: [`the config file is larger than ${CONFIG_LIMITS.fileBytes} bytes (2 MiB), the most a config may be`],
  },
  {
    name: 'bytes that are not UTF-8 (they were written on as U+FFFD)',
    text: () => Buffer.concat([Buffer.from(`${fixtureText('small')}# café `), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]),
    expected: [
      new RegExp(
        `not UTF-8: invalid byte 0xc3 at byte offset ${Buffer.byteLength(`${fixtureText('small')}# café `)} \\(line ${fixtureText('small').split('\n').length}, column 8\\)`,
      ),
    ],
  },
];

describe('hostile config files', () => {
  let dir: string;
  let out: string;
  let docs: string;

  beforeEach(() => {
    dir = tempDir('homelab-hostile-');
    out = join(dir, 'k8s');
    docs = join(dir, 'docs', 'platform.md');
    // Output of an earlier synth, which a refused config must leave exactly as it is.
    mkdirSync(join(out, 'lab', 'apps'), { recursive: true });
    writeFileSync(join(out, 'lab', 'apps', 'application-keep.yaml'), `${GENERATED_HEADER}kind: Application # previous synth\n`);
    mkdirSync(join(dir, 'docs'));
    writeFileSync(docs, `${PLATFORM_DOC_HEADER}previous diagrams\n`);
  });

  it.each(HOSTILE)('$name: refused at its place, exit 2, output untouched', (testCase) => {
    const file = join(dir, 'homelab.yaml');
    writeFileSync(file, testCase.text());
    const before = readTree(dir);

    const result = runMain(['--config', file, '--out', out, '--docs', docs]);

    expect(result.status).toBe(2);
    const errors = result.stderr.split('\n').filter((line) => line.startsWith('error: '));
    expect(errors.length).toBeGreaterThan(0);
    for (const line of errors) expect(line.startsWith(`error: ${file}: `)).toBe(true);
    for (const expected of testCase.expected) {
      if (typeof expected === 'string') expect(result.stderr).toContain(expected);
      else expect(result.stderr).toMatch(expected);
    }
    expect(result.stderr.trim().split('\n').filter((line) => !line.startsWith('error: ') && !line.startsWith('nothing was written'))).toEqual([]);
    expect(result.stdout).toBe('');
    expect(readTree(dir)).toEqual(before);
  });

  it('npm run diff refuses a hostile config the same way', async () => {
    const file = join(dir, 'homelab.yaml');
    writeFileSync(file, withLabOverrides('    __proto__: {domain: attacker.example.net}'));
    const result = await captureOutputAsync(() => diffMain(['--config', file]));
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(`error: ${file}: environments.lab.__proto__: keys named __proto__, constructor or prototype are not allowed`);
    expect(result.stdout).toBe('');
  });

  it('anchors and aliases still share blocks, also more than the YAML library allows by default (100)', () => {
    const config = fixtureObject('small');
    const resources = { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '50m', memory: '32Mi' } };
    config.apps = Object.fromEntries(Array.from({ length: 120 }, (_, i) => [`app-${i}`, { image: `ghcr.io/example/app:1.0.${i}`, probes: { none: 'a worker' }, resources: structuredClone(resources) }]));
    const expanded = toYamlText(config);
    // The first app's resources anchored, every other app's an alias of them.
    let blocks = 0;
    const aliased = expanded.replace(/(\n {4}resources:)\n( {6}.*\n)+/g, (block, head: string) =>
      blocks++ === 0 ? block.replace(head, `${head} &resources`) : `${head} *resources\n`,
    );
    expect(aliased.match(/\*resources/g)).toHaveLength(119);
    expect(parseText(aliased).environments.get('lab')).toEqual(parseText(expanded).environments.get('lab'));
  });

  it('a byte order mark is fine', () => {
    const file = join(dir, 'bom.yaml');
    writeFileSync(file, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(fixtureText('small'))]));
    expect(parseText(readConfigText(file, CONFIG_LIMITS.fileBytes)).environments).toEqual(parseText(fixtureText('small')).environments);
  });
});

describe('reading the config file', () => {
  it('reads a file of exactly the limit and refuses one byte more', () => {
    const dir = tempDir('homelab-read-');
    writeFileSync(join(dir, 'at-limit'), 'x'.repeat(100));
    writeFileSync(join(dir, 'over-limit'), 'x'.repeat(101));
    expect(readConfigText(join(dir, 'at-limit'), 100)).toHaveLength(100);
    expect(() => readConfigText(join(dir, 'over-limit'), 100)).toThrow(`${join(dir, 'over-limit')}: the config file is larger than 100 bytes`);
  });

  it('names the file and the reason when it cannot be read', () => {
    const dir = tempDir('homelab-read-');
    expect(() => readConfigText(join(dir, 'missing.yaml'), 100)).toThrow(`${join(dir, 'missing.yaml')}: cannot read the config file (no such file)`);
    expect(() => readConfigText(dir, 100)).toThrow(`${dir}: cannot read the config file (it is a directory)`);
  });

  it.each([
    { name: 'a stray continuation byte', bytes: [0x61, 0x80, 0x62], offset: 1 },
    { name: 'an overlong encoding of "/"', bytes: [0x61, 0xc0, 0xaf], offset: 1 },
    { name: 'an overlong three-byte form', bytes: [0xe0, 0x80, 0xaf], offset: 0 },
    { name: 'a UTF-16 surrogate', bytes: [0x61, 0x62, 0xed, 0xa0, 0x80], offset: 2 },
    { name: 'a code point above U+10FFFF', bytes: [0xf4, 0x90, 0x80, 0x80], offset: 0 },
    { name: 'a sequence cut off at the end', bytes: [0xc3, 0xa9, 0xe2, 0x82], offset: 2 },
    { name: 'a byte never used in UTF-8', bytes: [0x61, 0xff], offset: 1 },
  ])('finds the first invalid UTF-8 sequence: $name', ({ bytes, offset }) => {
    const buffer = Buffer.from(bytes);
    // The same verdict as the strict decoder's, and where it stops.
    expect(() => new TextDecoder('utf-8', { fatal: true }).decode(buffer)).toThrow();
    expect(() => new TextDecoder('utf-8', { fatal: true }).decode(buffer.subarray(0, offset))).not.toThrow();
    expect(firstInvalidUtf8(buffer)).toBe(offset);
  });

  it('accepts every well-formed sequence, up to U+10FFFF', () => {
    const text = 'a\u00e9\u0800\ud7ff\ue000\uffff\u{10000}\u{10ffff}';
    expect(firstInvalidUtf8(Buffer.from(text))).toBe(Buffer.byteLength(text));
  });
});

describe('the real CLI on files that never end', () => {
  /** Runs synth in a shell, so that `setup` (e.g. a writer into a FIFO) runs beside it. */
  const synthInShell = (setup: string, config: string, out: string) =>
    spawnSync('sh', ['-c', `${setup}\nexec "$0" "$1" synth --config "$2" --out "$3" --docs "$4"`, process.execPath, join(ROOT, 'bin', 'run.cjs'), config, out, join(out, '..', 'platform.md')], {
      cwd: ROOT,
      encoding: 'utf8',
    });

  const expectRefused = (run: ReturnType<typeof synthInShell>, config: string) => {
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(`error: ${config}: the config file is larger than ${CONFIG_LIMITS.fileBytes} bytes`);
    expect(run.stderr).not.toMatch(/^\s+at /m);
  };

  it('--config /dev/zero is refused after the limit, the output untouched', () => {
    const dir = tempDir('homelab-zero-');
    const out = join(dir, 'k8s');
    mkdirSync(out);
    writeFileSync(join(out, 'keep.yaml'), 'previous\n');
    const before = readTree(dir);
    expectRefused(synthInShell('', '/dev/zero', out), '/dev/zero');
    expect(readTree(dir)).toEqual(before);
  });

  it('a FIFO fed without end is refused after the limit; one that ends is read like a file', () => {
    const dir = tempDir('homelab-fifo-');
    const fifo = join(dir, 'config.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const out = join(dir, 'k8s');
    const config = join(dir, 'small.yaml');
    writeFileSync(config, fixtureText('small'));
    try {
      // `yes` writes until the reader closes the FIFO (it then stops on SIGPIPE). The writers
      // hold none of the shell's output pipes, so that the run ends when synth does.
      expectRefused(synthInShell(`(exec >/dev/null 2>&1; yes 'a: b' > "$2") &`, fifo, out), fifo);
      expect(readTree(out).size).toBe(0);

      const run = synthInShell(`(exec >/dev/null 2>&1; cat '${config}' > "$2") &`, fifo, out);
      expect(run.stderr).not.toContain('error:');
      expect(run.status).toBe(0);
      expect([...readTree(out).keys()].some((path) => path.startsWith('lab/'))).toBe(true);
    } finally {
      // A writer still waiting for a reader (had synth not opened the FIFO) opens, and stops.
      closeSync(openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK));
    }
  });
});

describe('merging overrides never reaches a prototype', () => {
  it('a __proto__ key that got past the parser is an own key of the result, not its prototype', () => {
    const override = JSON.parse('{"__proto__": {"cluster": {"server": "https://attacker.example.net:6443"}}, "domain": "lab.example.net"}');
    const merged = deepMerge({ cluster: undefined, domain: 'home.example.net' }, override) as Record<string, unknown>;
    expect(Object.getPrototypeOf(merged)).toBe(Object.prototype);
    expect(Object.hasOwn(merged, '__proto__')).toBe(true);
    expect(merged.cluster).toBeUndefined();
    expect(({} as Record<string, unknown>).cluster).toBeUndefined();
  });

  it('merges own keys only: inherited values and Object.prototype are neither read nor changed', () => {
    const base = Object.create({ inherited: { a: 1 } }) as Record<string, unknown>;
    const merged = deepMerge(base, { inherited: { b: 2 }, constructor: { c: 3 } }) as Record<string, unknown>;
    expect(merged.inherited).toEqual({ b: 2 });
    expect(Object.hasOwn(merged, 'constructor')).toBe(true);
    expect(Object.prototype.constructor).toBe(Object);
  });

  it('hasPath follows own keys only', () => {
    expect(hasPath({}, ['constructor'])).toBe(false);
    expect(hasPath({ a: {} }, ['a', 'toString'])).toBe(false);
    expect(hasPath({ a: { constructor: 1 } }, ['a', 'constructor'])).toBe(true);
    expect(hasPath({ a: ['x'] }, ['a', 0])).toBe(true);
  });
});
