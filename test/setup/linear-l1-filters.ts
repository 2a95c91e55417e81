/**
 * The tests run the generated L1 classes as the bundles do (bin/build-plugins.cjs): our
 * imports/ go through Vite's transform (vitest.config.mts), and the cdk8s-plus line's, which Node
 * loads itself, through this hook on Node's CommonJS compiler, installed before any test file
 * loads cdk8s-plus (a setup file; once per worker).
 */
import Module from 'node:module';
import buildPlugins from '../../bin/build-plugins.cjs';

const { GENERATED_L1, withLinearFilter } = buildPlugins;
type Compile = ((this: unknown, content: string, filename: string) => unknown) & { linearL1Filters?: true };
const prototype = Module.prototype as unknown as { _compile: Compile };
const compile = prototype._compile;

if (!compile.linearL1Filters) {
  const withFilters: Compile = function (content, filename) {
    return compile.call(this, GENERATED_L1.test(filename) ? (withLinearFilter(content) ?? content) : content, filename);
  };
  withFilters.linearL1Filters = true;
  prototype._compile = withFilters;
}
