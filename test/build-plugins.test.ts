/**
 * The source rewrite the bundles and the tests apply to the generated L1 classes
 * (bin/build-plugins.cjs): it leaves none of the quadratic filters, and each linear one returns
 * exactly what the quadratic one did — same keys, same order, same values.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { k8s } from 'cdk8s-plus-34';
import { describe, expect, it } from 'vitest';
import buildPlugins from '../bin/build-plugins.cjs';
import { toJson_IngressRouteSpec } from '../imports/traefik-traefik.io';
import { ROOT } from './support';

const { CDK8S_PLUS, GENERATED_L1, withLinearFilter } = buildPlugins;

/** Every file json2jsii wrote that the project loads. */
const GENERATED_FILES = [
  join(ROOT, 'node_modules', CDK8S_PLUS, 'lib', 'imports', 'k8s.js'),
  ...readdirSync(join(ROOT, 'imports'))
    .filter((file) => file.endsWith('.ts'))
    .map((file) => join(ROOT, 'imports', file)),
];
const QUADRATIC = /\.reduce\(\(r, i\) => \(i\[1\] === undefined\) \? r : \(\{ \.\.\.r, \[i\[0\]\]: ([^{}]+?) \}\), \{\}\)/g;

describe('linear filters in the generated L1 classes', () => {
  it('apply to every generated file the project loads, and leave no quadratic filter', () => {
    for (const file of GENERATED_FILES) {
      expect(GENERATED_L1.test(file), file).toBe(true);
      const code = readFileSync(file, 'utf8');
      const linear = withLinearFilter(code);
      if (linear === undefined) {
        expect(code.match(QUADRATIC), file).toBeNull();
        continue;
      }
      expect(linear.match(QUADRATIC), file).toBeNull();
    }
  });

  it('return what each shape of quadratic filter returns: the defined fields, in order, converted alike', () => {
    const shapes = new Set(GENERATED_FILES.flatMap((file) => [...readFileSync(file, 'utf8').matchAll(QUADRATIC)].map((m) => m[0].replace(/toJson_\w+/g, 'convert'))));
    expect(shapes.size).toBeGreaterThan(1);
    // Lists with a `value`, so that every shape's conversion (`.value`, `.map(...)`, a function) applies.
    const item = (value: unknown, ...items: unknown[]) => Object.assign(items, { value });
    const fields = { b: item(2, 'x'), a: undefined, c: item('x', { y: 1 }), d: item(undefined), e: item(null, null), g: undefined };
    for (const shape of shapes) {
      const original = `const convert = (v) => ({ converted: v }); return Object.entries(fields)${shape};`;
      const linear = withLinearFilter(`const convert = (v) => ({ converted: v }); return Object.entries(fields)${shape};`)!;
      expect(linear, shape).toBeDefined();
      const [expected, actual] = [original, linear].map((body) => new Function('fields', body)(fields));
      expect(JSON.stringify(actual), shape).toBe(JSON.stringify(expected));
      expect(Object.keys(actual), shape).toEqual(Object.keys(expected));
      // Own keys only, as Object.entries takes them: not what an object inherits.
      const inheriting = Object.assign(Object.create({ inherited: item('no') }), fields);
      const [fromOriginal, fromLinear] = [original, linear].map((body) => new Function('fields', body)(inheriting));
      expect(Object.keys(fromLinear), shape).toEqual(Object.keys(fromOriginal));
    }
  });

  it("are what the tests run too (test/setup/typescript-loader.mjs): the cdk8s-plus line's and ours", () => {
    expect(String((k8s as unknown as Record<string, unknown>).toJson_PodSpec)).toContain('__definedFieldsOf');
    expect(String(toJson_IngressRouteSpec)).toContain('__definedFieldsOf');
  });
});
