/**
 * The source rewrite the bundles and the tests apply to the generated L1 classes
 * (bin/build-plugins.cjs): it leaves none of the quadratic filters, and each linear one returns
 * exactly what the quadratic one did — same keys, same order, same values. And the bundles'
 * import of the CommonJS packages, once each: the same objects.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import { k8s } from 'cdk8s-plus-34';
import { describe, expect, it } from 'vitest';
import buildPlugins from '../bin/build-plugins.cjs';
import { toJson_IngressRouteSpec } from '../imports/traefik-traefik.io';
import { ROOT, tempDir } from './support';

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

describe('the CommonJS packages the project imports, imported once', () => {
  const { ESBUILD_PLUGINS } = buildPlugins;
  const build = (files: Record<string, string>, entry: string) => {
    const dir = tempDir();
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    // The packages resolve from the project's node_modules, as they do for its own files.
    return esbuild.build({ entryPoints: [join(dir, entry)], bundle: true, platform: 'node', format: 'cjs', write: false, nodePaths: [join(ROOT, 'node_modules')], plugins: [...ESBUILD_PLUGINS], logLevel: 'silent' });
  };

  it("give every file that imports them the packages' own objects, from one copy of each package's exports", async () => {
    const result = await build(
      {
        'a.ts': `import { ApiObject, Duration } from 'cdk8s';\nimport { k8s } from '${CDK8S_PLUS}';\nexport const a = { ApiObject, Duration, k8s };\n`,
        'b.ts': `import { ApiObject } from 'cdk8s';\nimport * as kplus from '${CDK8S_PLUS}';\nimport { Construct } from 'constructs';\nexport { a } from './a';\nexport const b = { ApiObject, Deployment: kplus.Deployment, Construct };\n`,
      },
      'b.ts',
    );
    const code = result.outputFiles![0].text;
    const module = { exports: {} as Record<string, any> };
    new Function('module', 'exports', 'require', code)(module, module.exports, createRequire(join(ROOT, 'package.json')));
    const { a, b } = module.exports;
    // The bundle's one copy of each package: both files get its objects, the ones the packages use among themselves.
    expect(a.ApiObject).toBe(b.ApiObject);
    expect(Object.getPrototypeOf(a.k8s.KubeDeployment)).toBe(a.ApiObject);
    expect(b.Deployment.prototype).toBeInstanceOf(b.Construct);
    expect(a.Duration.minutes(2).toSeconds()).toBe(120);
    // esbuild's copy of a CommonJS module's exports, once for each package, not for each file that imports one (five here).
    expect(code.match(/__toESM\(require_\w+\(\)/g)).toHaveLength(3);
  });

  it('fail the build on a name the package does not export', async () => {
    await expect(build({ 'c.ts': "import { ApiObjekt } from 'cdk8s';\nexport const c = ApiObjekt;\n" }, 'c.ts')).rejects.toThrow(/No matching export in "commonjs-once:cdk8s" for import "ApiObjekt"/);
  });
});
