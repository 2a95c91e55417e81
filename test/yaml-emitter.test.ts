import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { CORE_SCHEMA, load } from 'js-yaml';
import { parse, type ScalarTag, type CollectionTag, YAMLSeq } from 'yaml';
import { describe, expect, it } from 'vitest';
import { GENERATED_HEADER } from '../lib/output/output-guard';
import { HELM_VALUES_FILE } from '../lib/output/synthesize';
import { emitYaml, TaggedValue } from '../lib/util/yaml-emitter';
import { OPERATOR_CONFIG, OPERATOR_CONFIG_NAME, platformText, synthesizePlatformFixture, synthesizePlatforms } from './support';

/** Parsed back by YAML 1.2 (the `yaml` default, kubectl's sigs.k8s.io/yaml is 1.1-ish) and 1.1. */
function roundTrip(text: string): { v12: unknown; v11: unknown } {
  return { v12: parse(text), v11: parse(text, { version: '1.1' }) };
}

const TRICKY_STRINGS = [
  '', ' lead', 'trail ', 'x: y', 'a #b', 'true', 'no', 'On', 'y', '~', 'null', '1', '0755', '1e3', '.5', '1_000', '0x1f',
  '12:30', '2024-01-01', '*', '&a', '!tag', '%x', '@x', '`x`', '|', '>', '- x', '? x', '{"v1":"3"}', '[a]', "it's", '"q"',
  'a\tb', 'line1\nline2\n', 'l1\nl2', 'l1\n\n', ' indented\nblock', 'x\n y', 'trailing space \nline', '\ttab\nline',
  '.', '.e5', 'e5', 'https://example.com/a?b=c#d', 'Delete=false,ServerSideApply=true', 'argocd.argoproj.io/sync-wave', 'ünïcödé', 'a\u0001b',
];

describe('emitYaml', () => {
  it.each(TRICKY_STRINGS.map((s) => [JSON.stringify(s), s]))('round-trips the string %s as key and value', (_, value) => {
    const data = { [value || 'empty']: value, list: [value, { nested: value }] };
    const { v12, v11 } = roundTrip(emitYaml(data));
    expect(v12).toEqual(data);
    expect(v11).toEqual(data);
  });

  it('writes a tagged value after its tag in flow style, any string read back as written (1.1 and 1.2)', () => {
    /** Each tag read as `{tag, value}`. */
    const customTags: (ScalarTag | CollectionTag)[] = [
      { tag: '!Find', collection: 'seq', resolve: (seq: YAMLSeq) => ({ tag: '!Find', value: seq.toJSON() }) } as CollectionTag,
      { tag: '!Env', resolve: (value: string) => ({ tag: '!Env', value }) },
    ];
    for (const value of TRICKY_STRINGS.filter((s) => !s.includes('\n'))) {
      const data = { find: new TaggedValue('!Find', ['model', [value, 1, true, null]]), list: [new TaggedValue('!Env', value)] };
      const text = emitYaml(data);
      expect(text.split('\n')[0], text).toMatch(/^find: !Find \[model, \[.*\]\]$/);
      for (const version of ['1.1', '1.2'] as const) {
        expect(parse(text, { version, customTags }), `${version}: ${text}`).toEqual({ find: { tag: '!Find', value: ['model', [value, 1, true, null]] }, list: [{ tag: '!Env', value }] });
      }
    }
    expect(() => new TaggedValue('Find', 'x')).toThrow('not a YAML tag');
    expect(() => emitYaml({ a: new TaggedValue('!Find', [{ no: 'maps' }]) })).toThrow('scalars and lists only');
  });

  it('round-trips numbers, booleans, null and empty collections', () => {
    const data = { int: 3, neg: -1, float: 1.5, t: true, f: false, nil: null, list: [], map: {}, nested: [[1, 2], [], {}] };
    expect(roundTrip(emitYaml(data)).v12).toEqual(data);
  });

  it('refuses what is not plain data instead of writing it as {} or as its fields', () => {
    class Port {
      readonly number = 80;
    }
    expect(() => emitYaml({ at: new Date(0) })).toThrow('cannot write a Date as YAML');
    expect(() => emitYaml({ hosts: [new Map([['a', 1]])] })).toThrow('cannot write a Map as YAML');
    expect(() => emitYaml({ port: new Port() })).toThrow('cannot write a Port as YAML');
    expect(emitYaml({ plain: Object.assign(Object.create(null), { a: 1 }) })).toBe('plain:\n  a: 1\n');
  });

  /** What each file's YAML reads as: the fixture's files are read by two tests below, once. */
  const readBack = new Map<string, unknown>();
  /** A file's YAML as the linter and the tests read it (YAML 1.2, core schema). */
  const read = (content: string) => {
    if (!readBack.has(content)) readBack.set(content, load(content.slice(GENERATED_HEADER.length), { schema: CORE_SCHEMA }));
    return readBack.get(content);
  };

  /**
   * YAML 1.1 and 1.2 read the same structure and differ in how a plain scalar resolves, and the
   * emitter writes a key or a scalar the same way wherever it stands. So every distinct key and
   * scalar of the files, written as one mapping and one list, is read by 1.1 as 1.2 reads it in
   * the files: the `yaml` package reads that once instead of every file (a tenth of the cost).
   * Were the emitter to write a value differently by where it stands (flow style, say), this
   * would have to read the files themselves again.
   */
  it('writes every synthesized file so that YAML 1.1 reads each of its keys and scalars as 1.2 does, and emitting what 1.2 reads gives the same text', () => {
    const keys = new Set<string>();
    const scalars = new Set<unknown>();
    const collect = (value: unknown): void => {
      if (Array.isArray(value)) value.forEach(collect);
      else if (typeof value === 'object' && value !== null) {
        for (const [key, item] of Object.entries(value)) {
          keys.add(key);
          collect(item);
        }
      } else scalars.add(value);
    };
    for (const env of synthesizePlatformFixture()) {
      for (const [path, content] of env.files) {
        const value = read(content);
        expect(emitYaml(value), path).toBe(content.slice(GENERATED_HEADER.length));
        collect(value);
      }
    }
    const mapping = Object.fromEntries([...keys].map((key) => [key, 0]));
    expect(parse(emitYaml(mapping), { version: '1.1' })).toStrictEqual(mapping);
    const list = [...scalars];
    expect(parse(emitYaml(list), { version: '1.1' })).toStrictEqual(list);
  });

  it('writes any JSON value so that YAML 1.2 (core) and 1.1 read it back as exactly that value', () => {
    fc.assert(
      // As JSON holds it: -0 is 0 there, as in YAML.
      fc.property(fc.jsonValue().map((value) => JSON.parse(JSON.stringify(value)) as unknown), (value) => {
        const text = emitYaml(value);
        expect(load(text, { schema: CORE_SCHEMA })).toStrictEqual(value);
        expect(parse(text, { version: '1.1' })).toStrictEqual(value);
      }),
      { numRuns: 300 },
    );
  });

  // The tests read the manifests a synth kept instead of parsing its files (test/support.ts).
  it.each([
    ['the platform fixture', platformText(), undefined],
    ["the operator's config", readFileSync(OPERATOR_CONFIG, 'utf8'), OPERATOR_CONFIG_NAME],
  ])('writes every manifest synthesized from %s into a file that reads back as exactly that manifest', (_, config, file) => {
    for (const { env } of synthesizePlatforms(config, undefined, { file })) {
      const manifests = [...env.files].filter(([path]) => !HELM_VALUES_FILE.test(basename(path)));
      expect([...env.manifests.keys()].sort()).toEqual(manifests.map(([path]) => path).sort());
      // The matcher only where a manifest differs, to name the difference: on every manifest it made this
      // test of the fixture take ~45 ms, where isDeepStrictEqual's strict comparison makes it ~15.
      for (const [path, content] of manifests) {
        const value = read(content);
        if (!isDeepStrictEqual(value, env.manifests.get(path))) expect(value, path).toStrictEqual(env.manifests.get(path));
      }
    }
  });
});
