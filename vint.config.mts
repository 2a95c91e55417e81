import base from './vitest.config.mts';
export default { ...base, test: { ...base.test, deps: { interopDefault: false } } };
