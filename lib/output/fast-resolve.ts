/**
 * A faster drop-in for what cdk8s' `ApiObject.toJson()` does to every value of every object
 * (cdk8s 2.70): `resolve` walks the value, looking up the App's resolvers again at each node
 * (walking the construct tree up), creating a ResolutionContext and copying the key path for
 * each child; then `sanitizeValue` copies the result again, sorting keys and dropping empty
 * values — most of the time and garbage of a large synth, for values nothing resolves.
 *
 * This does both in one walk with the same result: a value goes through the resolvers only
 * where one of cdk8s' three built-in resolvers could act on it (a Lazy, an object with a
 * `resolve()` method, a class instance with a number or string `value`), and the key path is
 * materialized only then. `ApiObject.toJson()` and the metadata's `toJson()` are replaced by
 * copies of cdk8s' own that call this walk; an App with resolvers of its own keeps cdk8s'
 * code. test/output.test.ts renders every object of the platform fixture's services both ways and
 * compares them.
 */
import { ApiObject, ApiObjectMetadataDefinition, App, JsonPatch, Lazy } from 'cdk8s';
import * as cdk8sResolve from 'cdk8s/lib/resolve';
import { sortByCodeUnits } from '../util/text-order';

/** cdk8s' own methods, as they were before the installation. */
const originalToJson = ApiObject.prototype.toJson;
const originalMetadataToJson = ApiObjectMetadataDefinition.prototype.toJson;

/** What sanitizeValue is asked to do (cdk8s/lib/_util.js). */
interface Sanitize {
  readonly sortKeys: boolean;
  /** Drop empty arrays and objects (the metadata's toJson). */
  readonly filterEmpty: boolean;
}

/** One walk's fixed inputs; `path` is the key path of the current value, kept as a stack. */
interface Walk {
  readonly root: readonly string[];
  readonly path: (string | number)[];
  readonly apiObject: ApiObject;
  readonly resolvers: readonly cdk8sResolve.IResolver[];
  readonly sanitize: Sanitize;
}

/**
 * Whether a built-in resolver could replace the value (the conditions of LazyResolver,
 * ImplicitTokenResolver, NumberStringUnionResolver): a plain object or list only through a
 * `resolve()` method; an instance of any other class is left to the resolvers to decide.
 */
function mayResolve(value: any): boolean {
  const type = value.constructor;
  if (type === Object || type === Array) return typeof value.resolve === 'function';
  return value instanceof Lazy || typeof value.resolve === 'function' || typeof value.value === 'number' || typeof value.value === 'string';
}

/** resolve() then sanitizeValue() of one value: undefined where sanitizeValue drops it. */
function render(walk: Walk, value: any): unknown {
  if (value === null || value === undefined) return undefined;
  const kind = typeof value;
  if (kind !== 'object' && kind !== 'function') return value;
  if (mayResolve(value)) {
    const context = new cdk8sResolve.ResolutionContext(walk.apiObject, [...walk.root, ...walk.path.map(String)], value);
    for (const resolver of walk.resolvers) {
      resolver.resolve(context);
      if (context.replaced) return render(walk, context.replacedValue);
    }
  }
  if (kind !== 'object') return value;
  if (Array.isArray(value)) {
    if (walk.sanitize.filterEmpty && value.length === 0) return undefined;
    const items = new Array(value.length);
    for (let i = 0; i < value.length; i++) {
      walk.path.push(i);
      items[i] = render(walk, value[i]);
      walk.path.pop();
    }
    return items;
  }
  if (value.constructor.name !== 'Object') throw new Error(`can't render non-simple object of type '${value.constructor.name}'`);
  const result: Record<string, unknown> = {};
  const keys = Object.keys(value);
  if (walk.sanitize.sortKeys) sortByCodeUnits(keys);
  let kept = 0;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    walk.path.push(key);
    const rendered = render(walk, value[key]);
    walk.path.pop();
    if (rendered !== null && rendered !== undefined) {
      result[key] = rendered;
      kept += 1;
    }
  }
  return walk.sanitize.filterEmpty && kept === 0 ? undefined : result;
}

/**
 * Resolver lists found to be cdk8s' built-in ones (still three long: the list is an App's public
 * array). An App makes its list once; asking again for every object cost more than the walk of a
 * small one (each class read through the bundle's getter for a CommonJS export).
 */
const builtInResolvers = new WeakSet<readonly cdk8sResolve.IResolver[]>();

function isBuiltIn(resolvers: readonly cdk8sResolve.IResolver[]): boolean {
  if (resolvers.length === 3 && builtInResolvers.has(resolvers)) return true;
  const builtIn =
    resolvers.length === 3 &&
    resolvers[0] instanceof cdk8sResolve.LazyResolver &&
    resolvers[1] instanceof cdk8sResolve.ImplicitTokenResolver &&
    resolvers[2] instanceof cdk8sResolve.NumberStringUnionResolver;
  if (builtIn) builtInResolvers.add(resolvers);
  return builtIn;
}

/** sanitizeValue(resolve([], value, apiObject), sanitize), or undefined when the App has resolvers of its own. */
function resolveAndSanitize(apiObject: ApiObject, value: unknown, sanitize: Sanitize): { value: any } | undefined {
  const resolvers = App.of(apiObject).resolvers;
  if (!isBuiltIn(resolvers)) return undefined;
  return { value: render({ root: [], path: [], apiObject, resolvers, sanitize }, value) };
}

/** The private state of cdk8s' classes that their toJson() reads. */
interface ApiObjectState {
  readonly props: Record<string, unknown>;
  readonly patches: JsonPatch[];
}
interface MetadataState {
  readonly name?: string;
  readonly namespace?: string;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly finalizers: string[];
  readonly ownerReferences: unknown[];
  readonly apiObject: ApiObject;
  readonly _additionalAttributes: Record<string, unknown>;
}

/** The keys cdk8s puts first in a manifest. */
const LEADING_KEYS = ['apiVersion', 'kind', 'metadata'];

/** cdk8s' ApiObject.toJson(), with the one walk. */
function toJson(this: ApiObject): any {
  const self = this as unknown as ApiObjectState;
  try {
    const data = { ...self.props, metadata: this.metadata.toJson() };
    const json = resolveAndSanitize(this, data, { sortKeys: !process.env.CDK8S_DISABLE_SORT, filterEmpty: false });
    if (!json) return originalToJson.call(this);
    const patched = JsonPatch.apply(json.value, ...self.patches);
    // apiVersion, kind and metadata first, then the rest in their order.
    const result: Record<string, unknown> = {};
    for (const key of LEADING_KEYS) if (key in patched) result[key] = patched[key];
    const keys = Object.keys(patched);
    for (let i = 0; i < keys.length; i++) {
      if (!LEADING_KEYS.includes(keys[i])) result[keys[i]] = patched[keys[i]];
    }
    return result;
  } catch (e) {
    throw new Error(`Failed serializing construct at path '${this.node.path}' with name '${this.name}': ${e}`);
  }
}

/** cdk8s' ApiObjectMetadataDefinition.toJson(), with the one walk. */
function metadataToJson(this: ApiObjectMetadataDefinition): any {
  const self = this as unknown as MetadataState;
  const data = {
    ...self._additionalAttributes,
    name: self.name,
    namespace: self.namespace,
    annotations: self.annotations,
    finalizers: self.finalizers,
    ownerReferences: self.ownerReferences,
    labels: self.labels,
  };
  const json = resolveAndSanitize(self.apiObject, data, { sortKeys: true, filterEmpty: true });
  return json ? json.value : originalMetadataToJson.call(this);
}

/** Makes every `toJson()` of cdk8s objects use the one walk. */
export function installFastResolve(): void {
  ApiObject.prototype.toJson = toJson;
  ApiObjectMetadataDefinition.prototype.toJson = metadataToJson;
}

/** Puts cdk8s' own code back (for the test comparing both). */
export function uninstallFastResolve(): void {
  ApiObject.prototype.toJson = originalToJson;
  ApiObjectMetadataDefinition.prototype.toJson = originalMetadataToJson;
}
