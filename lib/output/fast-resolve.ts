/**
 * A faster drop-in for cdk8s' `resolve`, which `ApiObject.toJson()` runs over every value of
 * every object: cdk8s looks up the App's resolvers again at each value (walking the construct
 * tree up), creates a ResolutionContext for it and copies the key path for each child — most of
 * the time of a large synth, for values nothing resolves. This walk gives the same result: a
 * value goes through the resolvers only where one of cdk8s' three built-in resolvers could act on
 * it (a Lazy, an object with a `resolve()` method, a class instance with a number or string
 * `value`), and plain arrays and objects are copied child by child. An App with resolvers of its
 * own keeps cdk8s' walk. test/output.test.ts renders every object both ways and compares them.
 */
import { ApiObject, App, Lazy } from 'cdk8s';
import type * as Cdk8sResolve from 'cdk8s/lib/resolve';

type Resolve = (key: string[], value: unknown, apiObject: ApiObject) => unknown;

/** The module object itself (not an import binding, which is read-only): its `resolve` is what toJson() calls. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const cdk8sResolve = require('cdk8s/lib/resolve') as typeof Cdk8sResolve & { resolve: Resolve };

/** cdk8s' own walk, as it was before the installation. */
const originalResolve: Resolve = cdk8sResolve.resolve;

/** Where a value is, materialized only when a resolver needs it. */
interface KeyPath {
  readonly parent?: KeyPath;
  readonly name: string;
}

function pathOf(root: readonly string[], at: KeyPath | undefined): string[] {
  const names: string[] = [];
  for (let p = at; p; p = p.parent) names.push(p.name);
  return [...root, ...names.reverse()];
}

/** Whether a built-in resolver would replace the value (the conditions of LazyResolver, ImplicitTokenResolver, NumberStringUnionResolver). */
function mayResolve(value: any): boolean {
  if (value instanceof Lazy || typeof value.resolve === 'function') return true;
  return value.constructor !== Object && (typeof value.value === 'number' || typeof value.value === 'string');
}

function walk(root: readonly string[], at: KeyPath | undefined, value: any, apiObject: ApiObject, resolvers: readonly Cdk8sResolve.IResolver[]): unknown {
  if (value === null || value === undefined) return value;
  const kind = typeof value;
  if (kind !== 'object' && kind !== 'function') return value;
  if (mayResolve(value)) {
    const context = new cdk8sResolve.ResolutionContext(apiObject, pathOf(root, at), value);
    for (const resolver of resolvers) {
      resolver.resolve(context);
      if (context.replaced) return walk(root, at, context.replacedValue, apiObject, resolvers);
    }
  }
  if (Array.isArray(value)) return value.map((item, i) => walk(root, { parent: at, name: `${i}` }, item, apiObject, resolvers));
  if (value.constructor == Object) {
    const result: Record<string, unknown> = {};
    for (const key of Object.keys(value)) result[key] = walk(root, { parent: at, name: key }, value[key], apiObject, resolvers);
    return result;
  }
  return value;
}

function isBuiltIn(resolvers: readonly Cdk8sResolve.IResolver[]): boolean {
  return (
    resolvers.length === 3 &&
    resolvers[0] instanceof cdk8sResolve.LazyResolver &&
    resolvers[1] instanceof cdk8sResolve.ImplicitTokenResolver &&
    resolvers[2] instanceof cdk8sResolve.NumberStringUnionResolver
  );
}

const fastResolve: Resolve = (key, value, apiObject) => {
  const resolvers = App.of(apiObject).resolvers;
  if (!isBuiltIn(resolvers)) return originalResolve(key, value, apiObject);
  return walk(key, undefined, value, apiObject, resolvers);
};

/** Makes `ApiObject.toJson()` use the faster walk (it reads cdk8s' `resolve` export at each call). */
export function installFastResolve(): void {
  cdk8sResolve.resolve = fastResolve;
}

/** Puts cdk8s' own walk back (for the test comparing both). */
export function uninstallFastResolve(): void {
  cdk8sResolve.resolve = originalResolve;
}
