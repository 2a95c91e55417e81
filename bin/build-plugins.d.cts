/** Types of bin/build-plugins.cjs for the TypeScript that loads it (the tests). */
declare const buildPlugins: {
  /** esbuild plugins of the bundles. */
  readonly ESBUILD_PLUGINS: readonly import('esbuild').Plugin[];
  /** The cdk8s-plus package package.json depends on, e.g. `cdk8s-plus-34`. */
  readonly CDK8S_PLUS: string;
  /** The files written by json2jsii that the project loads. */
  readonly GENERATED_L1: RegExp;
  /** The code with linear filters, or undefined when it has none of the quadratic ones. */
  withLinearFilter(code: string): string | undefined;
};
export = buildPlugins;
