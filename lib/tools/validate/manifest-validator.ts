/**
 * Validates Kubernetes manifests against the OpenAPI definitions of the targeted Kubernetes version and the
 * CRDs' openAPIV3Schema, as imported into imports/schemas by scripts/import-schemas.ts.
 *
 * Strict like `kubeconform --strict`: an object schema that lists `properties` is closed, so a
 * misspelled field is an error instead of being silently pruned by the API server.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv, { _, ErrorObject, Options, ValidateFunction } from 'ajv';
import { KUBERNETES_VERSION } from '../../model/kubernetes';
import { cachedValidator, VALIDATOR_CACHE_DIR, validatorKey } from './compiled-validators';
import { readClusterScopedKinds, scopedKindName } from '../../output/cluster-scoped';
import { projectRoot } from '../../util/project';
import addFormats from 'ajv-formats';

/**
 * This module's source file, part of the compiled validators' cache key: how it hands schemas to
 * ajv shapes their code. The file's text, not the class's printed code: a bundle prints the class
 * with the names esbuild gives its imports, which change with unrelated sources, and the tests'
 * transform prints it otherwise, so every rebuild of the commands, and the tests after a
 * command, compiled every validator again.
 */
const VALIDATOR_SOURCE = join(projectRoot(), 'lib', 'tools', 'validate', 'manifest-validator.ts');

/** The code the cache key stands for: the source, or where it is not there, the class and the pattern translation as printed. */
function codeOfThisModule(): string {
  try {
    return readFileSync(VALIDATOR_SOURCE, 'utf8');
  } catch {
    return `${String(ManifestValidator)}\n${goRegExp.code}`;
  }
}

/** A JSON schema node: keyword → value. */
export type JsonSchema = { [keyword: string]: unknown };

/** The index written by the import: apiVersion → kind → schema reference (file[#fragment]). */
export interface SchemaIndex {
  kinds: Record<string, Record<string, string>>;
}

export const SCHEMA_DIR = join(projectRoot(), 'imports', 'schemas');
/** `kubernetes-1.34.json`: the definitions of KUBERNETES_VERSION. */
export const KUBERNETES_SCHEMA_FILE = `kubernetes-${KUBERNETES_VERSION.replace(/^v/, '')}.json`;

/** Keywords whose value maps names to subschemas. */
const SCHEMA_MAP_KEYWORDS = ['properties', 'patternProperties', 'definitions'];
/** Keywords whose value is a subschema (or, for `items`, a list of them). */
const SCHEMA_KEYWORDS = ['additionalProperties', 'additionalItems', 'items'];
/** Keywords whose subschemas are alternatives or constraints on the same value, not fields. */
const COMBINATOR_KEYWORDS = ['allOf', 'anyOf', 'oneOf', 'not'];

/**
 * Rebuilds a schema, applying `transform` to every subschema, children first. Only keyword
 * positions are walked, so a field that happens to be called `description` or `format` (as in
 * JSONSchemaProps or Argo CD's AppProject) is left alone. `inCombinator` is true for a branch
 * of allOf/anyOf/oneOf/not.
 */
export function mapSchema(
  schema: JsonSchema,
  transform: (node: JsonSchema, inCombinator: boolean) => JsonSchema,
  inCombinator = false,
): JsonSchema {
  const node: JsonSchema = {};
  for (const [keyword, value] of Object.entries(schema)) {
    node[keyword] = mapKeyword(keyword, value, transform);
  }
  return transform(node, inCombinator);
}

function mapKeyword(
  keyword: string,
  value: unknown,
  transform: (node: JsonSchema, inCombinator: boolean) => JsonSchema,
): unknown {
  const map = (v: unknown, inCombinator: boolean): unknown => (isObject(v) ? mapSchema(v, transform, inCombinator) : v);
  if (SCHEMA_MAP_KEYWORDS.includes(keyword) && isObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([name, v]) => [name, map(v, false)]));
  }
  const inCombinator = COMBINATOR_KEYWORDS.includes(keyword);
  if (inCombinator || SCHEMA_KEYWORDS.includes(keyword)) {
    return Array.isArray(value) ? value.map((v) => map(v, inCombinator)) : map(value, inCombinator);
  }
  return value;
}

function isObject(value: unknown): value is JsonSchema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class ManifestValidator {
  private static sharedInstance: ManifestValidator | undefined;

  /** The validator over the committed imports/schemas, created on first use. */
  static shared(): ManifestValidator {
    ManifestValidator.sharedInstance ??= new ManifestValidator();
    return ManifestValidator.sharedInstance;
  }

  /** Created on the first validator not in the cache (compiled-validators.ts). */
  private ajv: Ajv | undefined;
  private readonly index: SchemaIndex;
  private readonly clusterScoped: Set<string>;
  /** Schemas of CRDs met at run time (a rendered chart's), by their ajv id, for loadFile. */
  private readonly inlineSchemas = new Map<string, JsonSchema>();
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly loadedFiles = new Set<string>();
  /** Object subschema content (JSON) → id of the ajv schema holding it; see deduplicateObjects. */
  private readonly objectSchemaIds = new Map<string, string>();
  /** Each schema file as ajv compiles it (strict), by file. */
  private readonly strictSchemas = new Map<string, JsonSchema>();
  /** The hash of each strict schema file, by file: part of the cache keys of its kinds. */
  private readonly fileKeys = new Map<string, string>();
  /** The hash of what every validator's code is generated from, whatever the kind. */
  private commonKey: string | undefined;

  /**
   * @param schemaDir the imported schemas @default imports/schemas
   * @param cacheDir where compiled validators are kept @default .cache/validators (compiled-validators.ts)
   */
  constructor(
    private readonly schemaDir: string = SCHEMA_DIR,
    private readonly cacheDir: string = VALIDATOR_CACHE_DIR,
  ) {
    this.index = this.readJson('index.json') as unknown as SchemaIndex;
    this.clusterScoped = new Set(readClusterScopedKinds(schemaDir));
  }

  /**
   * Validates this CRD's custom resources too (a chart's, in a rendered set), where the imported
   * schemas do not already cover its kind and version: the imported ones are what the project
   * pins and reviews.
   */
  addCustomResourceDefinition(crd: { spec: { group: string; scope: string; names: { kind: string }; versions: { name: string; served: boolean; schema?: { openAPIV3Schema?: JsonSchema } }[] } }): void {
    const { group, names, scope, versions } = crd.spec;
    for (const version of versions.filter((v) => v.served && v.schema?.openAPIV3Schema)) {
      const apiVersion = `${group}/${version.name}`;
      if (this.index.kinds[apiVersion]?.[names.kind]) continue;
      const ref = `inline/${group}_${names.kind.toLowerCase()}_${version.name}.json`;
      this.inlineSchemas.set(ref, version.schema!.openAPIV3Schema!);
      (this.index.kinds[apiVersion] ??= {})[names.kind] = ref;
      if (scope === 'Cluster') this.clusterScoped.add(scopedKindName(apiVersion, names.kind));
    }
  }

  /** Returns one message per problem; an empty list means the document is valid. */
  validate(doc: unknown): string[] {
    if (!isObject(doc)) return ['document: must be a YAML mapping'];
    const { apiVersion, kind } = doc;
    const subject = subjectOf(doc);
    if (typeof apiVersion !== 'string' || apiVersion === '') return [`${subject}: missing apiVersion`];
    if (typeof kind !== 'string' || kind === '') return [`${subject}: missing kind`];
    const validate = this.validatorFor(apiVersion, kind);
    if (!validate) return [`${subject}: no schema for ${apiVersion} ${kind}`];
    const scope = this.scopeProblems(doc, apiVersion, kind).map((message) => `${subject}: ${message}`);
    if (validate(doc)) return scope;
    return [...formatErrors(validate.errors ?? []).map((message) => `${subject}: ${message}`), ...scope];
  }

  /** The API server drops a cluster-scoped object's namespace, and GitOps tools then see another object. */
  private scopeProblems(doc: JsonSchema, apiVersion: string, kind: string): string[] {
    const namespace = isObject(doc.metadata) ? doc.metadata.namespace : undefined;
    if (namespace === undefined || !this.clusterScoped.has(scopedKindName(apiVersion, kind))) return [];
    return [`metadata.namespace: ${kind} is cluster-scoped and must not name a namespace`];
  }

  private validatorFor(apiVersion: string, kind: string): ValidateFunction | undefined {
    const ref = this.index.kinds[apiVersion]?.[kind];
    if (!ref) return undefined;
    let validate = this.validators.get(ref);
    if (!validate) {
      const file = ref.split('#')[0];
      // The code is generated from the Kubernetes definitions (every CRD's metadata is
      // ObjectMeta), the kind's file, and this module's source (how it adds them to ajv).
      const key = validatorKey([this.keyOfAll(), file === KUBERNETES_SCHEMA_FILE ? '' : this.keyOfFile(file), ref]);
      validate = cachedValidator(key, () => {
        const ajv = this.compiler();
        this.loadFile(file);
        const compiled = ajv.getSchema(schemaId(ref));
        if (!compiled) throw new Error(`schema ${ref} (${apiVersion} ${kind}) is not in ${this.schemaDir}`);
        return { ajv, validate: compiled };
      }, this.cacheDir);
      this.validators.set(ref, validate);
    }
    return validate;
  }

  private keyOfAll(): string {
    this.commonKey ??= validatorKey([AJV_OPTIONS, codeOfThisModule(), this.keyOfFile(KUBERNETES_SCHEMA_FILE)]);
    return this.commonKey;
  }

  private keyOfFile(file: string): string {
    let key = this.fileKeys.get(file);
    if (!key) {
      key = validatorKey([this.strictSchema(file)]);
      this.fileKeys.set(file, key);
    }
    return key;
  }

  /**
   * The ajv that compiles what the cache does not hold, with the Kubernetes definitions added.
   * Compiling is what costs (validating takes ~20 µs a document) and these schemas are big:
   * without ajv's code optimisation and ref inlining, compiling every kind takes half the time.
   */
  private compiler(): Ajv {
    if (!this.ajv) {
      this.ajv = new Ajv(AJV_OPTIONS);
      addFormats(this.ajv);
      this.loadFile(KUBERNETES_SCHEMA_FILE);
    }
    return this.ajv;
  }

  /** A schema file as ajv gets it: closed objects, and for a CRD the API server's implicit rules made explicit. */
  private strictSchema(file: string): JsonSchema {
    let strict = this.strictSchemas.get(file);
    if (!strict) {
      const schema = this.readJson(file);
      strict = file === KUBERNETES_SCHEMA_FILE ? mapSchema(schema, closeObject) : strictCrdSchema(schema);
      this.strictSchemas.set(file, strict);
    }
    return strict;
  }

  /** Adds a schema file to ajv once; ajv compiles the parts actually referenced, on demand. */
  private loadFile(file: string): void {
    if (this.loadedFiles.has(file)) return;
    const ajv = this.compiler();
    const strict = this.strictSchema(file);
    this.registerFormats(ajv, strict);
    if (file === KUBERNETES_SCHEMA_FILE) {
      ajv.addSchema({ ...strict, $id: schemaId(file) });
    } else {
      ajv.addSchema({ ...this.deduplicateObjects(ajv, strict), $id: schemaId(file) });
    }
    this.loadedFiles.add(file);
  }

  /**
   * Replaces every object subschema below the root by a `$ref` to one ajv schema per distinct
   * content. CRDs inline the same types many times (RayCluster repeats the PodSpec per group
   * and the Container per list; Issuer and ClusterIssuer are the same) and ajv would compile
   * every copy: compiling every CRD took ~5 s without this, ~2 s with it.
   */
  private deduplicateObjects(ajv: Ajv, schema: JsonSchema): JsonSchema {
    // mapSchema replaces children first, so a parent's key is short and equal parents get equal keys.
    const toRef = (node: JsonSchema): JsonSchema => {
      if (!isObject(node.properties)) return node;
      const key = JSON.stringify(node);
      let id = this.objectSchemaIds.get(key);
      if (!id) {
        id = schemaId(`objects/${this.objectSchemaIds.size}`);
        this.objectSchemaIds.set(key, id);
        ajv.addSchema(node, id);
      }
      return { $ref: id };
    };
    const properties = Object.entries(schema.properties as JsonSchema).map(([field, value]) => [
      field,
      isObject(value) ? mapSchema(value, toRef) : value,
    ]);
    return { ...schema, properties: Object.fromEntries(properties) };
  }

  /** Formats that ajv-formats does not know pass, rather than making compilation fail. */
  private registerFormats(ajv: Ajv, schema: JsonSchema): void {
    mapSchema(schema, (node) => {
      if (typeof node.format === 'string' && !ajv.formats[node.format]) ajv.addFormat(node.format, true);
      return node;
    });
  }

  private readJson(file: string): JsonSchema {
    const inline = this.inlineSchemas.get(file);
    if (inline) return inline;
    return JSON.parse(readFileSync(join(this.schemaDir, file), 'utf8')) as JsonSchema;
  }
}

/**
 * CRD patterns are Go (RE2) regular expressions. The one construct in use that JavaScript lacks
 * is a leading `(?i)` (Prometheus rules' `partial_response_strategy`): it becomes the `i` flag.
 * Self-contained: the cached standalone code (compiled-validators.ts) holds its source.
 */
const goRegExpSource = (pattern: string, flags: string): RegExp =>
  pattern.includes('(?i)') ? new RegExp(pattern.replace('(?i)', ''), `${flags}i`) : new RegExp(pattern, flags);
const goRegExp = Object.assign(goRegExpSource, { code: `(${String(goRegExpSource)})` });

const AJV_OPTIONS: Options = {
  strict: false,
  allErrors: true,
  inlineRefs: false,
  // Kept for the cache; the formats as the generated code requires them (ajv-formats' full set, as addFormats adds).
  code: { optimize: false, regExp: goRegExp, source: true, formats: _`require("ajv-formats/dist/formats").fullFormats` },
};

/** Ajv resolves refs as URIs: an absolute base keeps "kubernetes-<minor>.json" from resolving into "crds/". */
const SCHEMA_BASE = 'https://schemas.invalid/';

function schemaId(ref: string): string {
  return SCHEMA_BASE + ref;
}

const OBJECT_META_REF = schemaId(
  `${KUBERNETES_SCHEMA_FILE}#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`,
);

/**
 * Closes an object schema that lists its properties, unless it explicitly keeps unknown fields.
 * Combinator branches are left open: in a structural schema they only restate constraints on
 * fields declared next to them, so closing a branch would reject those sibling fields.
 */
function closeObject(node: JsonSchema, inCombinator: boolean): JsonSchema {
  if (inCombinator || !isObject(node.properties) || 'additionalProperties' in node) return node;
  if (node['x-kubernetes-preserve-unknown-fields'] === true) return node;
  return { ...node, additionalProperties: false };
}

/** A CRD schema with the API server's implicit rules made explicit, then closed. */
function strictCrdSchema(schema: JsonSchema): JsonSchema {
  const strict = mapSchema(schema, (node, inCombinator) =>
    closeObject(embeddedResource(intOrString(withoutDefaultedRequired(node))), inCombinator),
  );
  // The API server validates a custom resource's metadata as ObjectMeta whatever the CRD says
  // (CRDs just declare `metadata: {type: object}`).
  return { ...strict, properties: { ...(strict.properties as JsonSchema), ...implicitObjectFields() } };
}

/**
 * The API server applies a CRD's `default`s before validating, so a required field that has a
 * default is never missing (RayCluster's workerGroupSpecs[].minReplicas, for instance).
 */
function withoutDefaultedRequired(node: JsonSchema): JsonSchema {
  const { required, properties } = node;
  if (!Array.isArray(required) || !isObject(properties)) return node;
  const hasDefault = (field: string) => isObject(properties[field]) && 'default' in properties[field];
  return { ...node, required: required.filter((field: string) => !hasDefault(field)) };
}

/** `x-kubernetes-int-or-string: true` means integer or string (controller-gen adds an equivalent anyOf). */
function intOrString(node: JsonSchema): JsonSchema {
  if (node['x-kubernetes-int-or-string'] !== true) return node;
  const { anyOf, ...rest } = node;
  // Drop the anyOf only when it merely repeats the two types, so one error is reported, not three.
  const onlyTypes =
    Array.isArray(anyOf) && anyOf.every((branch) => isObject(branch) && Object.keys(branch).join() === 'type');
  return { ...(onlyTypes ? rest : node), type: ['integer', 'string'] };
}

/** An embedded resource has apiVersion, kind and metadata even when its schema does not list them. */
function embeddedResource(node: JsonSchema): JsonSchema {
  if (node['x-kubernetes-embedded-resource'] !== true || !isObject(node.properties)) return node;
  return {
    ...node,
    properties: { ...implicitObjectFields(), ...node.properties, metadata: { $ref: OBJECT_META_REF } },
  };
}

function implicitObjectFields(): JsonSchema {
  return { apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { $ref: OBJECT_META_REF } };
}

/** `<kind>/<metadata.name>`, with `?` for what is missing: what error messages start with. */
function subjectOf(doc: JsonSchema): string {
  const name = isObject(doc.metadata) ? doc.metadata.name : undefined;
  return `${typeof doc.kind === 'string' ? doc.kind : '?'}/${typeof name === 'string' ? name : '?'}`;
}

/** Turns ajv errors into `dotted.path: message` lines, one per problem. */
function formatErrors(errors: ErrorObject[]): string[] {
  return mergeAlternatives(errors).map(({ path, message }) => `${path || '(root)'}: ${message}`);
}

interface Problem {
  path: string;
  message: string;
}

/**
 * With allErrors, a value matching none of oneOf/anyOf yields the combinator's error plus one
 * `type` error per branch (IntOrString: "must be string", "must be integer", "must match exactly
 * one schema in oneOf"). Those become one "must be string or integer" at that path.
 */
function mergeAlternatives(errors: ErrorObject[]): Problem[] {
  const alternativePaths = new Set(errors.filter(isAlternative).map((e) => e.instancePath));
  const typesByPath = new Map<string, string[]>();
  const others: ErrorObject[] = [];
  for (const error of errors) {
    if (error.keyword === 'type' && alternativePaths.has(error.instancePath)) {
      typesByPath.set(error.instancePath, [...(typesByPath.get(error.instancePath) ?? []), ...typesOf(error)]);
    } else {
      others.push(error);
    }
  }
  // A combinator error whose branches failed on type says nothing the merged types do not.
  const problems = others.filter((e) => !(isAlternative(e) && typesByPath.has(e.instancePath))).map(describe);
  for (const [path, types] of typesByPath) {
    problems.push({ path: dotted(path), message: `must be ${[...new Set(types)].join(' or ')}` });
  }
  return problems;
}

function isAlternative(error: ErrorObject): boolean {
  return error.keyword === 'oneOf' || error.keyword === 'anyOf';
}

function typesOf(error: ErrorObject): string[] {
  return String(error.params.type).split(',');
}

function describe(error: ErrorObject): Problem {
  const path = dotted(error.instancePath);
  switch (error.keyword) {
    case 'additionalProperties':
      return { path: childPath(path, String(error.params.additionalProperty)), message: 'unknown field' };
    case 'required':
      return { path: childPath(path, String(error.params.missingProperty)), message: 'required field is missing' };
    case 'type':
      return { path, message: `must be ${typesOf(error).join(' or ')}` };
    case 'enum': {
      const allowed = (error.params.allowedValues as unknown[]).map((v) => JSON.stringify(v));
      return { path, message: `must be one of ${allowed.join(', ')}` };
    }
    default:
      return { path, message: error.message ?? error.keyword };
  }
}

/** "/spec/template/spec/containers/0/image" → "spec.template.spec.containers.0.image". */
function dotted(instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
}

function childPath(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}
