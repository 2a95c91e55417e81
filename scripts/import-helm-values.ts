/**
 * Offline `cdk8s import helm:<repo>/<chart>@<version>`: types the values of the upstream Helm
 * charts the platform deploys, from their vendored files in vendor/charts/<chart> (Chart.yaml,
 * values.yaml and, where the chart has one, values.schema.json; `npm run upgrade` takes them from
 * the pinned chart's archive). For each chart it writes
 *   imports/helm/<folder>.schema.json  a draft-07 JSON Schema, checked at run time by lib/tools/validate/helm-values.ts
 *   imports/helm/<folder>.ts           the same schema as TypeScript (`<Name>Values`, CHART_NAME, CHART_VERSION)
 * Both are committed.
 *
 * Charts without a values.schema.json accept any value, and a string "false" is truthy in their
 * templates. Their schema is inferred from values.yaml: each key is typed by its default and
 * objects are closed, so a misspelled key is an error, except where the chart hands the object
 * to Kubernetes, a config file or a subchart (OPEN_KEY, subcharts, ChartConfig.openPaths).
 * Keys the chart reads but does not list in values.yaml are added from ChartConfig.extraKeys.
 *
 * Paths below are dotted key paths; `[]` stands for the items of an array, `*` for any one key
 * and `**` for any number of keys.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compile } from 'json-schema-to-typescript';
import { UserError } from '../lib/util/errors';
import { projectRoot } from '../lib/util/project';
import { Document, isMap, isScalar, isSeq, parse, parseDocument } from 'yaml';
import { VENDORED_CHARTS } from './upstream-inputs';
export const HELM_IMPORTS = join(projectRoot(), 'imports', 'helm');

const DRAFT_07 = 'http://json-schema.org/draft-07/schema#';

export interface Schema {
  type?: string | string[];
  description?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  items?: Schema | Schema[];
  $ref?: string;
  [keyword: string]: unknown;
}

interface ChartConfig {
  /** Root type name in imports/helm/<folder>.ts. */
  typeName: string;
  /**
   * What to do with the chart's own values.schema.json. 'tighten' (for schemas that never set
   * additionalProperties false): objects that list properties but leave additionalProperties
   * unset get the keys of values.yaml merged in and are closed. 'as-is': the chart already
   * closes the objects it means to close.
   */
  upstreamSchema?: 'tighten' | 'as-is';
  /** Objects that accept any key (known keys stay typed), besides OPEN_KEY and the subcharts. */
  openPaths?: readonly string[];
  /**
   * Valid keys missing from values.yaml (documented only in comments, or read by the templates):
   * path → example value, typed like a values.yaml default (null: any type).
   */
  extraKeys?: Readonly<Record<string, unknown>>;
}

/**
 * Keys whose objects are passed through to Kubernetes fields or are free-form data maps
 * (labels, annotations, selectors, resources, probes, security contexts, extra containers,
 * volumes, env...): they accept any key, at any depth below them.
 */
const OPEN_KEY =
  /^(annotations|labels|nodeSelector|affinity|tolerations|topologySpreadConstraints|resources|securityContext|env|envFrom|volumes|volumeMounts|initContainers|lifecycle|dnsConfig|hostAliases|strategy|updateStrategy|deploymentStrategy|selector|matchLabels|extraObjects)$|.(Annotations|Labels|Selector|SecurityContext|Affinity|Probe|Resources|Volumes|VolumeMounts|Containers|Env|Args)$/;

/**
 * Kubernetes IntOrString / Quantity fields (and ports, which templates render either way).
 * Their defaults are often "" or a number, so typing them by the default would reject the other.
 */
const INT_OR_STRING_KEY = /^(port|targetPort|nodePort|minAvailable|maxUnavailable|maxSurge|maxSkew|cpu|memory|storage|ephemeral-storage)$/;

const EXTRA_KEY_DESCRIPTION = 'Not listed in the chart values.yaml, but read by the chart (see scripts/import-helm-values.ts).';

/** How to type each chart of the versions table (CHARTS), by chart name (a test checks they are the same charts). */
export const HELM_VALUES_IMPORTS: Readonly<Record<string, ChartConfig>> = {
  'argo-cd': {
    typeName: 'ArgoCdValues',
    // argocd-cm, argocd-cmd-params-cm and argocd-rbac-cm take any Argo CD setting as a key
    // (e.g. `server.insecure`, `resource.customizations.health.<group_kind>`, `policy.<team>.csv`).
    openPaths: ['configs.cm', 'configs.params', 'configs.rbac'],
    extraKeys: {
      // Deprecated in favour of configs.params, documented in comments and still read.
      'dex.logFormat': '',
      'dex.logLevel': '',
      'notifications.logFormat': '',
      'notifications.logLevel': '',
      // Documented in comments next to the other ServiceMonitor settings.
      'notifications.metrics.serviceMonitor.namespace': '',
      'notifications.metrics.serviceMonitor.interval': '',
      'notifications.metrics.serviceMonitor.scrapeTimeout': '',
      // Read by the templates only.
      'controller.metrics.serviceMonitor.scrapeTimeout': '',
      'applicationSet.replicaCount': 1,
      'commitServer.envFrom': [],
      'commitServer.hostNetwork': false,
      'commitServer.imagePullSecrets': [],
      'commitServer.lifecycle': {},
    },
  },
  longhorn: {
    typeName: 'LonghornValues',
    // defaultSettings lists every setting the chart's default-setting.yaml renders (102 in
    // 1.12.1, each `~` = keep Longhorn's default), so it stays closed: a misspelled setting
    // would otherwise be dropped silently.
    extraKeys: {
      nameOverride: '',
      'service.ui.loadBalancerIP': '',
      'service.ui.loadBalancerSourceRanges': [],
    },
  },
  'kube-prometheus-stack': {
    typeName: 'KubePrometheusStackValues',
    openPaths: [
      // Rendered with toYaml into the Alertmanager config / CR fields.
      'alertmanager.config',
      'alertmanager.alertmanagerSpec.storage',
      'alertmanager.alertmanagerSpec.alertmanagerConfigMatcherStrategy',
      'prometheus.prometheusSpec.storageSpec',
      'prometheus.prometheusSpec.persistentVolumeClaimRetentionPolicy',
      'thanosRuler.thanosRulerSpec.storage',
      'prometheusOperator.admissionWebhooks.patch.podAnnotations',
      '**.verticalPodAutoscaler.updatePolicy',
      // Maps of rule group name → settings, rule name → bool.
      'defaultRules.rules',
      'defaultRules.disabled',
      'additionalPrometheusRulesMap',
      'customRules',
    ],
    extraKeys: {
      // Documented in comments.
      '**.podDisruptionBudget.maxUnavailable': '',
      '**.verticalPodAutoscaler.recommenders': [],
      '**.verticalPodAutoscaler.controlledValues': '',
      'alertmanager.alertmanagerSpec.configSecret': '',
      'prometheusOperator.admissionWebhooks.deployment.priorityClassName': '',
      'prometheusOperator.admissionWebhooks.deployment.logFormat': '',
      'prometheusOperator.admissionWebhooks.deployment.logLevel': '',
      'prometheusOperator.admissionWebhooks.certManager.issuerRef': {},
      'prometheusOperator.clusterDomain': '',
      'prometheusOperator.logFormat': '',
      'prometheusOperator.logLevel': '',
      'prometheusOperator.priorityClassName': '',
      'prometheusOperator.networkPolicy.cilium': {},
      'prometheusOperator.networkPolicy.matchLabels': {},
      'prometheusOperator.prometheusDefaultBaseImage': '',
      'prometheusOperator.prometheusDefaultBaseImageRegistry': '',
      'prometheusOperator.alertmanagerDefaultBaseImage': '',
      'prometheusOperator.alertmanagerDefaultBaseImageRegistry': '',
      'prometheus.networkPolicy.cilium': {},
      'prometheus.networkPolicy.egress': [],
      'prometheus.networkPolicy.ingress': [],
      'prometheus.networkPolicy.podSelector': {},
      'prometheus.extraSecret.name': '',
      'prometheus.ingress.servicePort': 9090,
      'prometheus.ingress.pathType': '',
      'prometheus.thanosIngress.pathType': '',
      'thanosRuler.ingress.pathType': '',
      '**.service.selector': {},
      'alertmanager.service.clusterPort': 9094,
      // Read by the templates only.
      'alertmanager.alertmanagerSpec.version': '',
      'alertmanager.extraSecret.name': '',
      'alertmanager.ingress.extraPaths': [],
      'alertmanager.ingress.pathType': '',
      'alertmanager.ingress.serviceName': '',
      'alertmanager.ingress.servicePort': 9093,
      'alertmanager.ingressPerReplica.pathType': '',
      'prometheus.ingress.extraPaths': [],
      'prometheus.ingressPerReplica.pathType': '',
      'prometheus.serviceMonitor.proxyUrl': '',
      'kubelet.serviceMonitor.resourceMetricRelabelings': [],
      'kubelet.serviceMonitor.scrapeTimeout': '',
      'thanosRuler.name': '',
      'thanosRuler.extraSecret.name': '',
      'thanosRuler.thanosRulerSpec.alertQueryUrl': '',
      'thanosRuler.thanosRulerSpec.alertmanagersUrl': [],
      // Rule groups that have templates but no toggle in values.yaml (so they are off by default).
      'defaultRules.rules.k8sContainerCpuLimits': false,
      'defaultRules.rules.k8sContainerCpuRequests': false,
      'defaultRules.rules.k8sContainerMemoryLimits': false,
      'defaultRules.rules.k8sContainerMemoryRequests': false,
    },
  },
  loki: {
    typeName: 'LokiValues',
    upstreamSchema: 'tighten',
    extraKeys: {
      // Read by the templates only (loki.* are fallbacks of defaults.* in _pod.tpl).
      'loki.command': [],
      'loki.hostAliases': [],
      'loki.hostUsers': null,
      'loki.nodeSelector': {},
      'loki.priorityClassName': '',
      'loki.resources': {},
      'loki.terminationGracePeriodSeconds': 30,
      'loki.tolerations': [],
      'defaults.resources': {},
      'global.podAnnotations': {},
      'backend.service.publishNotReadyAddresses': true,
      'memberlist.service.name': '',
      'networkPolicy.flavor': '',
      'networkPolicy.egressWorld': {},
      'networkPolicy.egressKubeApiserver': {},
      'rbac.useExistingRole': '',
      'read.legacyReadTarget': false,
      'sidecar.rules.sizeLimit': '',
    },
  },
  alloy: {
    typeName: 'AlloyValues',
    extraKeys: { 'ingress.ingressClassName': '' },
  },
  vault: {
    typeName: 'VaultValues',
    upstreamSchema: 'tighten',
    extraKeys: {
      // Read by the templates only.
      nameOverride: '',
      fullnameOverride: '',
      'injector.uid': 100,
      'injector.gid': 1000,
      'server.uid': 100,
      'server.gid': 1000,
      'server.readinessProbe.path': '',
      'server.service.type': '',
      'server.service.clusterIP': '',
    },
  },
  'external-secrets': {
    typeName: 'ExternalSecretsValues',
    upstreamSchema: 'tighten',
    extraKeys: { '**.podDisruptionBudget.maxUnavailable': '' },
  },
  traefik: { typeName: 'TraefikValues', upstreamSchema: 'as-is' },
  'cert-manager': { typeName: 'CertManagerValues', upstreamSchema: 'as-is' },
  'kuberay-operator': {
    typeName: 'KuberayOperatorValues',
    extraKeys: { useKubernetesProxy: false, watchNamespace: [''] },
  },
  'dcgm-exporter': { typeName: 'DcgmExporterValues' },
  'external-dns': { typeName: 'ExternalDnsValues', upstreamSchema: 'tighten' },
  tempo: {
    typeName: 'TempoValues',
    // Documented in comments.
    extraKeys: { 'persistence.storageClassName': '' },
  },
  'cloudnative-pg': {
    typeName: 'CloudnativePgValues',
    // The schema lists every key but never closes an object.
    upstreamSchema: 'tighten',
    // The operator's settings (the ConfigMap's data) and the subchart's values are free-form.
    openPaths: ['config.data', 'monitoring'],
  },
  'plugin-barman-cloud': {
    typeName: 'PluginBarmanCloudValues',
    // Like the operator's chart (the same generator): every key listed, no object closed.
    upstreamSchema: 'tighten',
  },
  seaweedfs: {
    typeName: 'SeaweedfsValues',
    // Passed to the pods' environment as name → value or valueFrom.
    openPaths: ['**.extraEnvironmentVars'],
    extraKeys: {
      // Documented in comments (the buckets the post-install hook creates, with their ttl and versioning).
      'allInOne.s3.createBuckets': [],
      's3.createBuckets': [],
    },
  },
  authentik: { typeName: 'AuthentikValues' },
  'nvidia-device-plugin': {
    typeName: 'NvidiaDevicePluginValues',
    // The per-GPU-sharing config files (config.map.<name>) are free-form.
    openPaths: ['config.map'],
    extraKeys: {
      // Documented in comments.
      'devicePlugin.enableHostNetwork': false,
      'gfd.enableHostNetwork': false,
      'mps.enableHostNetwork': false,
      // Read by the templates only.
      nvidiaDevRoot: '',
      noTimestamp: false,
      sleepInterval: null,
    },
  },
};

/** Everything known about one chart while its schema is built. */
interface ChartContext {
  folder: string;
  config: ChartConfig;
  /** Description of each values.yaml key, by pathKey(). */
  comments: Map<string, string>;
  /** ChartConfig.openPaths and the subchart keys. */
  openPaths: RegExp[];
}

interface ChartYaml {
  name: string;
  version: string;
  dependencies?: { name: string; alias?: string }[];
}

export async function importHelmValues(): Promise<void> {
  rmSync(HELM_IMPORTS, { recursive: true, force: true });
  await writeHelmValueTypes(HELM_IMPORTS);
}

/** Writes what imports/helm holds into dir: per chart, its values schema and the module typing it. */
export async function writeHelmValueTypes(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  for (const folder of Object.keys(HELM_VALUES_IMPORTS)) {
    const schema = chartSchema(folder);
    writeFileSync(join(dir, `${folder}.schema.json`), `${JSON.stringify(schema, null, 2)}\n`);
    writeFileSync(join(dir, `${folder}.ts`), await chartModule(folder, schema));
  }
}

/** The text of imports/helm/<folder>.ts: the values type of the schema, CHART_NAME and CHART_VERSION. */
export async function chartModule(folder: string, schema: Schema): Promise<string> {
  const chart = readChartYaml(folder);
  const version = String(chart.version);
  const types = await chartTypes(folder, HELM_VALUES_IMPORTS[folder].typeName, schema, `${chart.name} Helm chart ${version}`);
  return `${types}\nexport const CHART_NAME = '${chart.name}';\nexport const CHART_VERSION = '${version}';\n`;
}

async function chartTypes(folder: string, typeName: string, schema: Schema, chart: string): Promise<string> {
  const types = await compile(untypedAsUnknown(schema) as never, typeName, {
    bannerComment: `/**\n * Values of the ${chart}. Generated by \`npm run import\`\n * (scripts/import-helm-values.ts) from vendor/charts/${folder}: do not edit.\n */`,
    additionalProperties: false,
    // Maps with known keys (`labels: { grafana_dashboard?: string; [k: string]: string }`) only
    // type-check when the index signature admits the `undefined` of the optional keys.
    strictIndexSignatures: true,
  });
  // Everything is inline (no $refs, no titles), so the root is the only declaration. Its name is
  // set here because json-schema-to-typescript capitalises after digits (N8nValues → N8NValues).
  const declarations = types.match(/^export (interface|type) \w+/gm) ?? [];
  if (declarations.length !== 1) throw new Error(`${folder}: expected one type declaration, got ${declarations.join(', ')}`);
  return types.replace(/^export (interface|type) \w+/m, `export $1 ${typeName}`);
}

function readChartYaml(folder: string): ChartYaml {
  return parse(readChartFile(folder, 'Chart.yaml')) as ChartYaml;
}

function readChartFile(folder: string, file: string): string {
  const path = join(VENDORED_CHARTS, folder, file);
  if (!existsSync(path)) throw new UserError([`vendor/charts/${folder}/${file}: missing; run \`npm run upgrade\` to vendor it`]);
  return readFileSync(path, 'utf8');
}

/** The schema of imports/helm/<folder>.schema.json, built from vendor/charts/<folder>. */
export function chartSchema(folder: string): Schema {
  const config = HELM_VALUES_IMPORTS[folder];
  const chart = readChartYaml(folder);
  const doc = parseDocument(readChartFile(folder, 'values.yaml'));
  const subcharts = (chart.dependencies ?? []).map((d) => d.alias ?? d.name);
  const context: ChartContext = {
    folder,
    config,
    comments: collectComments(doc),
    openPaths: [...(config.openPaths ?? []), ...subcharts].map(globToRegExp),
  };
  const inferred = inferValue(context, doc.toJS(), [], false);
  const schema = config.upstreamSchema ? fromUpstream(context, inferred) : inferred;
  for (const subchart of subcharts) {
    // A subchart takes its own values under its key, whether or not the parent lists it.
    schema.properties![subchart] ??= { type: 'object', additionalProperties: true, description: `Values of the ${subchart} subchart.` };
  }
  for (const [path, example] of Object.entries(config.extraKeys ?? {})) addExtraKey(context, schema, path, example);
  return { $schema: DRAFT_07, ...normalize(schema) };
}

function fromUpstream(context: ChartContext, inferred: Schema): Schema {
  const upstream = JSON.parse(readChartFile(context.folder, 'values.schema.json')) as Schema;
  const inlined = inlineRefs(upstream, upstream, []) as Schema;
  return context.config.upstreamSchema === 'tighten' ? tighten(context, inlined, inferred, [], false) : inlined;
}

// ---- inference from values.yaml ----

function inferValue(context: ChartContext, value: unknown, path: string[], parentOpen: boolean): Schema {
  const open = parentOpen || isOpenPath(context, path);
  const schema = inferType(context, value, path, open);
  const description = context.comments.get(pathKey(path));
  return description ? { description, ...schema } : schema;
}

function inferType(context: ChartContext, value: unknown, path: string[], open: boolean): Schema {
  if (value === null || value === undefined) return {}; // `~` or no value: any type
  if (Array.isArray(value)) return inferArray(context, value, path);
  if (typeof value === 'object') return inferObject(context, value as Record<string, unknown>, path, open);
  if (typeof value === 'boolean') return { type: 'boolean' };
  return { type: INT_OR_STRING_KEY.test(path.at(-1) ?? '') ? ['number', 'string'] : typeof value === 'number' ? 'number' : 'string' };
}

function inferObject(context: ChartContext, value: Record<string, unknown>, path: string[], open: boolean): Schema {
  const keys = Object.keys(value);
  if (keys.length === 0) return { type: 'object', additionalProperties: true };
  const properties = Object.fromEntries(keys.map((key) => [key, inferValue(context, value[key], [...path, key], open)]));
  return { type: 'object', properties, additionalProperties: open };
}

/** Array items are open: they are usually Kubernetes objects (tolerations, volumes, rules...). */
function inferArray(context: ChartContext, value: unknown[], path: string[]): Schema {
  const itemPath = [...path, '[]'];
  const items = value.map((item) => inferValue(context, item, itemPath, true));
  return items.length === 0 ? { type: 'array' } : { type: 'array', items: items.reduce(mergeItemSchemas) };
}

/** One schema for the items of an array: objects merge their properties, mixed types give any. */
function mergeItemSchemas(a: Schema, b: Schema): Schema {
  if (JSON.stringify(a.type) !== JSON.stringify(b.type)) return {};
  if (a.type !== 'object' || !a.properties || !b.properties) return a;
  const properties = { ...a.properties };
  for (const [key, schema] of Object.entries(b.properties)) properties[key] = key in properties ? mergeItemSchemas(properties[key], schema) : schema;
  return { ...a, properties };
}

function isOpenPath(context: ChartContext, path: string[]): boolean {
  const dotted = path.join('.');
  return OPEN_KEY.test(path.at(-1) ?? '') || context.openPaths.some((glob) => glob.test(dotted));
}

// ---- charts with their own values.schema.json ----

/**
 * Merges the values.yaml keys into objects of the chart's schema that list properties but leave
 * additionalProperties unset, and closes them. The root is closed even where the chart sets
 * additionalProperties true (loki): every valid top-level key is in values.yaml, the
 * schema, the subcharts or extraKeys.
 */
function tighten(context: ChartContext, upstream: Schema, inferred: Schema | undefined, path: string[], parentOpen: boolean): Schema {
  const open = parentOpen || isOpenPath(context, path);
  const result: Schema = { ...upstream };
  if (!result.description && inferred?.description) result.description = inferred.description;
  if (upstream.properties) {
    const known = inferred?.properties ?? {};
    const properties: Record<string, Schema> = {};
    for (const [key, schema] of Object.entries(upstream.properties)) properties[key] = tighten(context, schema, known[key], [...path, key], open);
    for (const [key, schema] of Object.entries(known)) properties[key] ??= schema;
    result.properties = properties;
    if (path.length === 0 || upstream.additionalProperties === undefined) result.additionalProperties = open;
  }
  if (upstream.items && !Array.isArray(upstream.items)) {
    const inferredItems = Array.isArray(inferred?.items) ? undefined : inferred?.items;
    result.items = tighten(context, upstream.items, inferredItems, [...path, '[]'], true);
  }
  return result;
}

/** Replaces local `$ref`s by what they point to, so that the types come out inline. */
function inlineRefs(node: unknown, root: Schema, resolving: string[]): unknown {
  if (Array.isArray(node)) return node.map((item) => inlineRefs(item, root, resolving));
  if (!node || typeof node !== 'object') return node;
  const { $ref, ...rest } = node as Schema;
  const inlined = mapValues(rest, (value) => inlineRefs(value, root, resolving));
  if ($ref === undefined) return inlined;
  if (!$ref.startsWith('#/') || resolving.includes($ref)) throw new Error(`cannot inline $ref ${$ref} (remote or recursive)`);
  const target = $ref
    .slice(2)
    .split('/')
    .reduce<unknown>((at, token) => (at as Record<string, unknown>)[decodeURIComponent(token).replace(/~1/g, '/').replace(/~0/g, '~')], root);
  if (target === undefined) throw new Error(`$ref ${$ref} points to nothing`);
  // Keywords next to the $ref (a description) win over the target's.
  return { ...(inlineRefs(target, root, [...resolving, $ref]) as Schema), ...inlined };
}

// ---- extra keys, normalization ----

function addExtraKey(context: ChartContext, schema: Schema, path: string, example: unknown): void {
  const dot = path.lastIndexOf('.');
  const parent = globToRegExp(dot < 0 ? '' : path.slice(0, dot));
  const key = path.slice(dot + 1);
  let matched = 0;
  visitObjects(schema, [], (node, nodePath) => {
    if (!parent.test(nodePath.join('.'))) return;
    matched++;
    node.properties ??= {};
    node.properties[key] ??= { description: EXTRA_KEY_DESCRIPTION, ...inferValue(context, example, [...nodePath, key], false) };
  });
  if (matched === 0) throw new Error(`${context.folder}: extraKeys path "${path}" matches no object of values.yaml`);
}

/** Calls `visit` for each object schema reachable through properties and array items. */
function visitObjects(schema: Schema, path: string[], visit: (node: Schema, path: string[]) => void): void {
  if (schema.properties || schema.type === 'object') visit(schema, path);
  for (const [key, child] of Object.entries(schema.properties ?? {})) visitObjects(child, [...path, key], visit);
  if (schema.items && !Array.isArray(schema.items)) visitObjects(schema.items, [...path, '[]'], visit);
}

/**
 * Makes the schema self-contained draft-07 for a values *override* (what goes into
 * valuesObject, merged over the chart defaults by Helm), whose TypeScript type accepts exactly
 * what ajv does:
 * - no `required` or if/then/else rules: they constrain the merged values, and an override
 *   may set any subset of keys; Helm still checks them when it renders the chart;
 * - additionalProperties explicit on every object: json-schema-to-typescript closes the ones that
 *   leave it unset, JSON Schema leaves them open;
 * - no `title`s: each would become a separately named interface.
 */
function normalize(schema: Schema): Schema {
  return mapSchemaTree(schema, (node) => {
    const result: Schema = Object.fromEntries(Object.entries(node).filter(([key]) => !DROPPED_KEYWORDS.has(key)));
    if (Array.isArray(result.allOf)) {
      const allOf = result.allOf.filter((item) => Object.keys(item as Schema).length > 0);
      if (allOf.length > 0) result.allOf = allOf;
      else delete result.allOf;
    }
    const isObject = result.properties !== undefined || result.type === 'object' || (Array.isArray(result.type) && result.type.includes('object'));
    if (isObject && result.additionalProperties === undefined) result.additionalProperties = true;
    return result;
  });
}

const DROPPED_KEYWORDS = new Set(['$schema', '$id', 'title', '$defs', 'definitions', 'required', 'if', 'then', 'else', 'errorMessage']);

/**
 * json-schema-to-typescript types a schema without a type as an object, or by its `default`;
 * JSON Schema (and so ajv) accepts anything there.
 */
function untypedAsUnknown(schema: Schema): Schema {
  return mapSchemaTree(schema, (node) => (Object.keys(node).some((key) => TYPE_KEYWORDS.has(key)) ? node : { ...node, tsType: 'unknown' }));
}

const TYPE_KEYWORDS = new Set(['type', 'properties', 'additionalProperties', 'patternProperties', 'items', 'enum', 'const', 'allOf', 'anyOf', 'oneOf', 'not']);
const SUBSCHEMA_MAPS = new Set(['properties', 'patternProperties']);
const SUBSCHEMAS = new Set(['items', 'additionalProperties', 'allOf', 'anyOf', 'oneOf', 'not', 'contains']);

/** Applies `fn` to each schema of the tree, innermost first. */
function mapSchemaTree(node: Schema, fn: (node: Schema) => Schema): Schema {
  const mapChild = (child: unknown): unknown => (child && typeof child === 'object' ? mapSchemaTree(child as Schema, fn) : child);
  const result: Schema = {};
  for (const [key, value] of Object.entries(node)) {
    if (SUBSCHEMA_MAPS.has(key)) result[key] = mapValues(value as Record<string, unknown>, mapChild);
    else if (SUBSCHEMAS.has(key)) result[key] = Array.isArray(value) ? value.map(mapChild) : mapChild(value);
    else result[key] = value;
  }
  return fn(result);
}

function mapValues<T, U>(record: Record<string, T>, fn: (value: T) => U): Record<string, U> {
  return Object.fromEntries(Object.entries(record).map(([key, value]) => [key, fn(value)]));
}

// ---- values.yaml comments ----

/** The comment right above each key of values.yaml, keyed by pathKey(). */
function collectComments(doc: Document): Map<string, string> {
  const comments = new Map<string, string>();
  const walk = (node: unknown, path: string[]): void => {
    if (isSeq(node)) node.items.forEach((item) => walk(item, [...path, '[]']));
    if (!isMap(node)) return;
    node.items.forEach((pair, index) => {
      if (!isScalar(pair.key)) return;
      const keyPath = [...path, String(pair.key.value)];
      // The yaml parser attaches the comment above a map's first key to the map itself.
      const comment = cleanComment(pair.key.commentBefore ?? (index === 0 ? node.commentBefore : undefined));
      if (comment) comments.set(pathKey(keyPath), comment);
      walk(pair.value, keyPath);
    });
  };
  walk(doc.contents, []);
  return comments;
}

/**
 * The lines of a comment right above a key, up to a blank line or a commented-out value (those
 * are examples or leftovers from the previous key), without helm-docs markers (`-- `, `@default`).
 */
function cleanComment(comment: string | null | undefined): string | undefined {
  const lines = (comment ?? '').split('\n').map((line) => line.replace(/^#*\s?/, '').trimEnd());
  while (lines.length > 0 && lines[lines.length - 1].trim() === '') lines.pop();
  const description: string[] = [];
  for (const line of lines.reverse()) {
    if (line.trim() === '' || COMMENTED_OUT_YAML.test(line)) break;
    if (!line.startsWith('@')) description.unshift(line.replace(/^-- /, ''));
  }
  return description.length > 0 ? description.join('\n') : undefined;
}

/** `key: value` (lower-case key, unlike `Ref:` or `Note:`), `- item`, a nested comment or a template. */
const COMMENTED_OUT_YAML = /^\s*(- |#|(?!(ref|see|note|example|default)s?:)[a-z][\w./-]*:(\s|$))|\{\{/;

function pathKey(path: string[]): string {
  return JSON.stringify(path);
}

function globToRegExp(glob: string): RegExp {
  const segments = glob === '' ? [] : glob.split('.');
  const source = segments
    .map((segment, i) => {
      const separator = i < segments.length - 1 ? '\\.' : '';
      if (segment === '**') return `(?:.*${separator})?`;
      return (segment === '*' ? '[^.]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) + separator;
    })
    .join('');
  return new RegExp(`^${source}$`);
}
