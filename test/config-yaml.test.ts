/**
 * The fast way to read a config (lib/model/config/plain-yaml.ts) against the `yaml` package the
 * careful parser is built on: wherever the fast way gives a value, the `yaml` package reads the
 * same text without an error and to the same value, key by key; everything else is left to the
 * careful parser. Checked on tricky texts, on generated values written in every style, and on
 * random small edits of the real configs (where a lenient parser would accept what is broken).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { dump } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { parseDocument, stringify } from 'yaml';
import { CONFIG_LIMITS } from '../lib/model/config/limits';
import { parsePlainYaml } from '../lib/model/config/plain-yaml';
import { ROOT } from './support';

/** What the `yaml` package makes of the text: its value, or undefined when it reports an error. */
function reference(text: string): unknown {
  const document = parseDocument(text, { uniqueKeys: true });
  return document.errors.length > 0 ? undefined : document.toJS({ maxAliasCount: -1 });
}

/** The fast way gives nothing, or exactly what the `yaml` package gives (which then has no error). */
function agreement(text: string): string | undefined {
  const fast = parsePlainYaml(text);
  if (fast === undefined) return undefined;
  const careful = reference(text);
  return isDeepStrictEqual(fast, careful)
    ? undefined
    : `${JSON.stringify(text)}: fast ${JSON.stringify(fast)}, yaml ${careful === undefined ? 'an error' : JSON.stringify(careful)}`;
}

/** The operator's config first, then the fixtures. */
const CONFIGS = ['homelab.yaml', 'test/fixtures/platform.yaml', 'test/fixtures/small.yaml'].map((path) => readFileSync(join(ROOT, path), 'utf8'));

describe('the fast way to read a config', () => {
  it('reads the fixtures, and agrees on whatever homelab.yaml holds', () => {
    // The fixtures are plain YAML: the fast way must take them. The operator's file may use
    // anything YAML has (anchors, tags): then the careful parser reads it.
    for (const text of CONFIGS.slice(1)) expect(parsePlainYaml(text)).toBeDefined();
    for (const text of CONFIGS) expect(agreement(text)).toBeUndefined();
  });

  it.each([
    // Scalars of the YAML 1.2 core schema, and what is a string there but not in YAML 1.1.
    'a: [1_000, 0o17, 0x1F, 017, +5, -0, .5, 1., 1e3, -1.5E-3, .inf, -.Inf, .NaN, 0b101, 12:30, 2024-01-01]',
    'a: [yes, no, on, off, y, n, True, TRUE, tRUE, false, ~, null, Null, NULL, nULL, "", "null"]',
    'a:\nb: ~\nc: [ , ]',
    // Strings: quotes, escapes, folding, block scalars with every chomping and an indentation indicator.
    'a: "x\\ty \\x41 \\u263A \\U0001F600 \\N \\_ \\L \\P \\0 \\e \\/ \\""\nb: \'it\'\'s\'\nc: "two\n  lines"',
    'a: plain\n  continued\n\n  after a blank\nb: x # comment\nc: x#not a comment',
    'a: |\n  keep\n   indent\n\nb: |-\n  strip\n\n\nc: |+\n  keep all\n\n\nd: >\n  folded\n  lines\n\n  para\ne: |2\n    two\n',
    // Keys the yaml package reads as other strings, or refuses.
    '~: 1',
    '1: a\n"1": b',
    'true: 1',
    '1.0: x',
    '"": x',
    '? a\n: b',
    '[a]: b',
    '{a: 1}: b',
    '__proto__: {a: 1}',
    'a: 1\na: 2',
    // What only the careful parser handles: directives, documents, tags, anchors, aliases, merge keys.
    '%YAML 1.1\n---\na: yes',
    '---\na: 1\n---\nb: 2',
    'a: !!str 1',
    'a: !!int "3"',
    'a: !custom x',
    'a: &x 1\nb: *x',
    'a: &x {c: 1}\nb:\n  <<: *x',
    'a:\n  <<: {b: 1}',
    'a: "*x"\nb: \'&y\'\nc: "!z"\nd: "0 3 * * *"',
    'a: !!int 0x1F\nb: !!null ""\nc: !!bool "true"\nd: !!float "1e3"\ne: !!int "012"',
    // Layout: CRLF, a BOM, tabs, flow collections over lines, comments everywhere, no final newline.
    'a: 1\r\nb:\r\n  - x\r\n',
    '\uFEFFa: 1',
    'a:\tb',
    'a:\n\t- b',
    'a: [1,\n  2, {b: c,\n  d: e}]',
    '# top\na: # after key\n  - 1 # after item\n# end',
    'a: 1',
    // Not a mapping at the top, or nothing at all.
    '',
    '# only a comment',
    '- a',
    'just text',
    '[1, 2]',
    // Broken.
    'a: [1, 2',
    'a: "unterminated',
    'a: b: c',
    '  a: 1\nb: 2',
    'a:\n  - 1\n  b: 2',
    'a: {b: 1, b: 2}',
    'a: @x',
    'a: `x`',
  ])('agrees on %j, or leaves it to the careful parser', (text) => {
    expect(agreement(text)).toBeUndefined();
  });

  it('leaves directives, tags, anchors and aliases, keys that are not plain strings, and anything past a limit to the careful parser', () => {
    for (const text of [
      '%YAML 1.1\n---\na: yes',
      'a: &x 1\nb: *x',
      'a: !!str 1',
      'a: ! x',
      'a: !custom x',
      '~: 1',
      '1: a',
      '__proto__: {}',
      'constructor: 1',
      '[a]: 1',
      '? a\n: b',
      '- a',
      '',
    ]) {
      expect(parsePlainYaml(text), text).toBeUndefined();
    }
    const nested = (depth: number) => `a: ${'['.repeat(depth)}${']'.repeat(depth)}`;
    expect(parsePlainYaml(nested(CONFIG_LIMITS.depth - 1))).toBeDefined();
    expect(parsePlainYaml(nested(CONFIG_LIMITS.depth))).toBeUndefined();
    expect(parsePlainYaml(nested(100_000))).toBeUndefined();
    expect(parsePlainYaml(`a: "${'x'.repeat(CONFIG_LIMITS.stringBytes)}"`)).toBeDefined();
    expect(parsePlainYaml(`a: "${'é'.repeat(CONFIG_LIMITS.stringBytes / 2 + 1)}"`)).toBeUndefined();
  });

  it('agrees on generated values written by either library in any style', () => {
    const key = fc.oneof(fc.string(), fc.constantFrom('a', 'b-c', 'x.y', 'with space', 'ünï', '1', 'null', 'yes', '<<', 'a: b', '#x', '-', '?'));
    const scalar = fc.oneof(
      fc.string(),
      fc.string({ unit: fc.constantFrom('a', ' ', '\n', '\t', ':', '#', '"', "'", '\\', '-', '*', '&', '!', '|', '>', '[', '{', ',', 'é', '\u2028', '\r') }),
      fc.integer(),
      fc.double({ noNaN: false }),
      fc.boolean(),
      fc.constant(null),
    );
    const value = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, scalar, fc.array(tie('node'), { maxLength: 4 }), fc.dictionary(key, tie('node'), { maxKeys: 4 })),
    })).node;
    const style = fc.constantFrom<((v: unknown) => string)[]>(
      (v) => stringify(v),
      (v) => stringify(v, { collectionStyle: 'flow' }),
      (v) => stringify(v, { defaultStringType: 'QUOTE_DOUBLE' }),
      (v) => stringify(v, { defaultStringType: 'QUOTE_SINGLE', defaultKeyType: 'PLAIN' }),
      (v) => stringify(v, { defaultStringType: 'BLOCK_LITERAL' }),
      (v) => stringify(v, { defaultStringType: 'BLOCK_FOLDED', lineWidth: 20 }),
      (v) => dump(v, { lineWidth: 20 }),
      (v) => dump(v, { flowLevel: 1 }),
    );
    fc.assert(
      fc.property(fc.dictionary(key, value, { minKeys: 1, maxKeys: 5 }), style, (v, write) => {
        let text: string;
        try {
          text = write(v);
        } catch {
          return; // A value the library cannot write (js-yaml and some keys).
        }
        expect(agreement(text)).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });

  it('agrees on random small edits of the real configs: never reads what the yaml package refuses', () => {
    const edit = fc.record({
      config: fc.integer({ min: 0, max: CONFIGS.length - 1 }),
      at: fc.nat(),
      kind: fc.constantFrom('insert', 'delete', 'replace', 'indent', 'dedent', 'duplicate line'),
      text: fc.constantFrom(':', ' ', '-', '#', '"', "'", '[', ']', '{', '}', ',', '\n', '\t', '|', '>', '&', '*', '!', '?', '%', '  ', ': ', '- ', 'x'),
    });
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 3 }), (edits) => {
        let text = CONFIGS[edits[0].config];
        for (const { at, kind, text: piece } of edits) {
          const i = at % (text.length + 1);
          const lineStart = text.lastIndexOf('\n', i - 1) + 1;
          const lineEnd = text.indexOf('\n', i) === -1 ? text.length : text.indexOf('\n', i);
          if (kind === 'insert') text = text.slice(0, i) + piece + text.slice(i);
          if (kind === 'delete') text = text.slice(0, i) + text.slice(i + 1);
          if (kind === 'replace') text = text.slice(0, i) + piece + text.slice(i + 1);
          if (kind === 'indent') text = `${text.slice(0, lineStart)} ${text.slice(lineStart)}`;
          if (kind === 'dedent' && text[lineStart] === ' ') text = text.slice(0, lineStart) + text.slice(lineStart + 1);
          if (kind === 'duplicate line') text = text.slice(0, lineEnd) + text.slice(lineStart - 1 < 0 ? 0 : lineStart - 1, lineEnd) + text.slice(lineEnd);
        }
        expect(agreement(text)).toBeUndefined();
      }),
      { numRuns: 100 },
    );
  });
});
