/**
 * How the bundles (bin/run.cjs) transform what they load, and the tests
 * (test/setup/typescript-loader.mjs) the generated L1 classes as the bundles do: source-level
 * rewrites that change no behaviour, only what it costs.
 *
 * Plain CommonJS, like bin/run.cjs: it runs before any TypeScript has been compiled.
 */
'use strict';
const { readFileSync } = require('node:fs');
const { join } = require('node:path');

/**
 * zod's classic API loads its messages in some 40 languages, a seventh of the bundle, to offer
 * `z.locales`; the config's messages are ours, in English (zod's own English ones load apart).
 */
const ZOD_ENGLISH_ONLY = {
  name: 'zod-english-only',
  setup(builder) {
    builder.onResolve({ filter: /^\.\.\/locales\/index\.c?js$/ }, (args) =>
      /[\\/]zod[\\/]/.test(args.importer) ? { path: 'zod-locales', namespace: 'zod-english-only' } : undefined,
    );
    builder.onLoad({ filter: /.*/, namespace: 'zod-english-only' }, () => ({ contents: 'module.exports = {};', loader: 'js' }));
  },
};

/**
 * The generated L1 classes of cdk8s (the cdk8s-plus line's imports/k8s.js, and ours in imports/,
 * both written by json2jsii) drop undefined fields when serializing an object or a map with
 * `Object.entries(x).reduce((r, i) => (i[1] === undefined) ? r : ({ ...r, [i[0]]: f(i[1]) }), {})`,
 * which copies the object once per field: quadratic, and for a pod spec's or a container's
 * dozens of fields a tenth of a synth's time and garbage. The same result (own enumerable keys,
 * in order, without the undefined ones, each value through f) in one pass.
 */
const QUADRATIC_FILTER = /Object\.entries\(([^()]+)\)\.reduce\(\(r, i\) => \(i\[1\] === undefined\) \? r : \(\{ \.\.\.r, \[i\[0\]\]: ([^{}]+?) \}\), \{\}\)/g;
const LINEAR_FILTER_FUNCTION =
  '\nfunction __definedFieldsOf(fields, convert) { const defined = {}; const keys = Object.keys(fields); for (let i = 0; i < keys.length; i++) { const value = fields[keys[i]]; if (value !== undefined) defined[keys[i]] = convert ? convert(value) : value; } return defined; }\n';
/**
 * The cdk8s-plus line package.json depends on (`cdk8s-plus-<Kubernetes minor>`, ADR 32): read, not
 * named, so that moving the platform to another Kubernetes version cannot leave its L1 classes
 * quadratic.
 */
const CDK8S_PLUS = Object.keys(require('../package.json').dependencies).find((name) => /^cdk8s-plus-\d+$/.test(name));
if (CDK8S_PLUS === undefined) throw new Error('package.json: no cdk8s-plus-<minor> dependency');
/** The files written by json2jsii that the project loads. */
const GENERATED_L1 = new RegExp(String.raw`[\\/](?:${CDK8S_PLUS}[\\/]lib[\\/]imports[\\/]k8s\.js|imports[\\/][^\\/]+\.ts)$`);

/** The file's code with linear filters, or undefined when it has none of the quadratic ones. */
function withLinearFilter(code) {
  let replaced = 0;
  const linear = code.replace(QUADRATIC_FILTER, (_, fields, value) => {
    replaced += 1;
    return value === 'i[1]' ? `__definedFieldsOf(${fields})` : `__definedFieldsOf(${fields}, (value) => ${value.split('i[1]').join('value')})`;
  });
  return replaced > 0 ? linear + LINEAR_FILTER_FUNCTION : undefined;
}

const LINEAR_L1_FILTERS = {
  name: 'linear-l1-filters',
  setup(builder) {
    builder.onLoad({ filter: GENERATED_L1 }, (args) => {
      const contents = withLinearFilter(readFileSync(args.path, 'utf8'));
      return contents === undefined ? undefined : { contents, loader: args.path.endsWith('.ts') ? 'ts' : 'js' };
    });
  },
};

/**
 * cdk8s, the cdk8s-plus line and constructs are CommonJS (jsii's). esbuild gives every file that
 * imports one its own copy of the exports (`__toESM`: a getter defined per name, ~60 copies of up
 * to ~100 names at every start), and each use of an import then reads through two getters
 * (esbuild's, then tslib's `__exportStar` one). Instead the project's files import each package
 * from a module that imports it once and reads every export into a constant, which esbuild binds
 * directly: the same objects, since these packages' exports never change once loaded. Measured
 * on the slow machine: ~7 ms less to load the synth bundle (its `--help`), ~3.5% fewer
 * instructions in a synth (callgrind). The names are the package's own (it is loaded to list
 * them, once per build); a name a file imports that the package does not export now fails the
 * build (esbuild let it through as undefined; tsc reports it too).
 */
const COMMONJS_ONCE = [...new Set(['cdk8s', CDK8S_PLUS, 'constructs'])];
const COMMONJS_ONCE_NAMESPACE = 'commonjs-once';
const IMPORT_COMMONJS_ONCE = {
  name: 'import-commonjs-once',
  setup(builder) {
    builder.onResolve({ filter: /^[a-z0-9@][\w./@-]*$/ }, (args) => {
      if (!COMMONJS_ONCE.includes(args.path) || args.namespace === COMMONJS_ONCE_NAMESPACE || /[\\/]node_modules[\\/]/.test(args.importer)) return undefined;
      return { path: args.path, namespace: COMMONJS_ONCE_NAMESPACE };
    });
    builder.onLoad({ filter: /.*/, namespace: COMMONJS_ONCE_NAMESPACE }, (args) => {
      const names = Object.keys(require(args.path)).filter((name) => name !== 'default' && /^[A-Za-z_$][\w$]*$/.test(name));
      return {
        contents: `import * as whole from ${JSON.stringify(args.path)};\nexport const { ${names.join(', ')} } = whole;\n`,
        loader: 'js',
        resolveDir: join(__dirname, '..'),
      };
    });
  },
};

module.exports = { ESBUILD_PLUGINS: [ZOD_ENGLISH_ONLY, LINEAR_L1_FILTERS, IMPORT_COMMONJS_ONCE], CDK8S_PLUS, GENERATED_L1, withLinearFilter };
