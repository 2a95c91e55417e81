/**
 * Imports the schemas that lib/validate/manifest-validator.ts checks k8s/ against, from the
 * vendored Kubernetes definitions and CRDs (vendor/, scripts/upstream-inputs.ts), into
 * imports/schemas (committed):
 *   kubernetes-<minor>.json     the OpenAPI definitions of the targeted Kubernetes version
 *   crds/<group>_<kind>_<version>.json   each served CRD version's openAPIV3Schema
 *   index.json                  apiVersion → kind → schema file[#/definitions/<name>]
 *   cluster-scoped.json         the kinds that live outside namespaces, as `Kind.group`
 * Descriptions are dropped (they are most of the size); keys are sorted so output is stable.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { CLUSTER_SCOPED_FILE, scopedKindName } from '../lib/output/cluster-scoped';
import {
  JsonSchema,
  KUBERNETES_SCHEMA_FILE,
  mapSchema,
  SCHEMA_DIR,
  SchemaIndex,
} from '../lib/tools/validate/manifest-validator';
import { UserError } from '../lib/util/errors';
import { projectRoot } from '../lib/util/project';
import { byCodeUnits } from '../lib/util/text-order';
import { crdFile, crdModules, kubernetesFile } from './upstream-inputs';

/**
 * The built-in kinds that are not namespaced: `kubectl api-resources --namespaced=false` on
 * Kubernetes 1.34 with every API group served (the definitions carry no scope; each kind's
 * `+genclient:nonNamespaced` in k8s.io/api v0.34). `Kind.group`, the core group as `Kind`.
 * A kind the vendored definitions lack fails the import (see writeSchemas).
 */
const BUILTIN_CLUSTER_SCOPED = [
  'APIService.apiregistration.k8s.io',
  'CSIDriver.storage.k8s.io',
  'CSINode.storage.k8s.io',
  'CertificateSigningRequest.certificates.k8s.io',
  'ClusterRole.rbac.authorization.k8s.io',
  'ClusterRoleBinding.rbac.authorization.k8s.io',
  'ClusterTrustBundle.certificates.k8s.io',
  'ComponentStatus',
  'CustomResourceDefinition.apiextensions.k8s.io',
  'DeviceClass.resource.k8s.io',
  'DeviceTaintRule.resource.k8s.io',
  'FlowSchema.flowcontrol.apiserver.k8s.io',
  'IPAddress.networking.k8s.io',
  'IngressClass.networking.k8s.io',
  'MutatingAdmissionPolicy.admissionregistration.k8s.io',
  'MutatingAdmissionPolicyBinding.admissionregistration.k8s.io',
  'MutatingWebhookConfiguration.admissionregistration.k8s.io',
  'Namespace',
  'Node',
  'PersistentVolume',
  'PriorityClass.scheduling.k8s.io',
  'PriorityLevelConfiguration.flowcontrol.apiserver.k8s.io',
  'ResourceSlice.resource.k8s.io',
  'RuntimeClass.node.k8s.io',
  'SelfSubjectAccessReview.authorization.k8s.io',
  'SelfSubjectReview.authentication.k8s.io',
  'SelfSubjectRulesReview.authorization.k8s.io',
  'ServiceCIDR.networking.k8s.io',
  'StorageClass.storage.k8s.io',
  'StorageVersion.internal.apiserver.k8s.io',
  'StorageVersionMigration.storagemigration.k8s.io',
  'SubjectAccessReview.authorization.k8s.io',
  'TokenReview.authentication.k8s.io',
  'ValidatingAdmissionPolicy.admissionregistration.k8s.io',
  'ValidatingAdmissionPolicyBinding.admissionregistration.k8s.io',
  'ValidatingWebhookConfiguration.admissionregistration.k8s.io',
  'VolumeAttachment.storage.k8s.io',
  'VolumeAttributesClass.storage.k8s.io',
];

interface CustomResourceDefinition {
  kind: string;
  spec: {
    group: string;
    scope: 'Namespaced' | 'Cluster';
    names: { kind: string };
    versions: { name: string; served: boolean; schema?: { openAPIV3Schema?: JsonSchema } }[];
  };
}

interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

/** Writes everything into a staging folder that replaces imports/schemas at the end: a failed import leaves the old schemas. */
export function importSchemas(): void {
  const staging = `${SCHEMA_DIR}.staging-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  try {
    writeSchemas(staging);
    rmSync(SCHEMA_DIR, { recursive: true, force: true });
    renameSync(staging, SCHEMA_DIR);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** Writes the schemas of imports/schemas into dir. */
export function writeSchemas(dir: string): void {
  const index: SchemaIndex = { kinds: {} };
  const clusterScoped = new Set(BUILTIN_CLUSTER_SCOPED);
  importKubernetes(dir, index);
  for (const module of Object.keys(crdModules()).sort()) importCrds(dir, crdFile(module), index, clusterScoped);
  const known = new Set(Object.entries(index.kinds).flatMap(([apiVersion, kinds]) => Object.keys(kinds).map((kind) => scopedKindName(apiVersion, kind))));
  const unknown = [...clusterScoped].filter((kind) => !known.has(kind));
  if (unknown.length > 0) throw new Error(`cluster-scoped kinds without a schema: ${unknown.join(', ')}`);
  writeJson(dir, 'index.json', { $comment: generatedBy('vendor/'), kinds: index.kinds });
  writeJson(dir, CLUSTER_SCOPED_FILE, { $comment: generatedBy('vendor/'), kinds: [...clusterScoped].sort() });
}

function importKubernetes(dir: string, index: SchemaIndex): void {
  const { definitions } = JSON.parse(readVendored(kubernetesFile())) as {
    definitions: Record<string, JsonSchema>;
  };
  writeJson(dir, KUBERNETES_SCHEMA_FILE, {
    $comment: generatedBy(relative(projectRoot(), kubernetesFile())),
    ...stripDescriptions({ definitions }),
  });
  for (const [name, definition] of Object.entries(definitions)) {
    const kinds = (definition['x-kubernetes-group-version-kind'] ?? []) as GroupVersionKind[];
    for (const { group, version, kind } of kinds) {
      addToIndex(
        index,
        group ? `${group}/${version}` : version,
        kind,
        `${KUBERNETES_SCHEMA_FILE}#/definitions/${name}`,
      );
    }
  }
}

function importCrds(dir: string, file: string, index: SchemaIndex, clusterScoped: Set<string>): void {
  const source = relative(projectRoot(), file);
  for (const document of parseAllDocuments(readVendored(file))) {
    const crd = document.toJS() as CustomResourceDefinition;
    if (crd?.kind !== 'CustomResourceDefinition') throw new Error(`${source}: not a CustomResourceDefinition`);
    const { group, names, scope, versions } = crd.spec;
    if (scope === 'Cluster') clusterScoped.add(scopedKindName(`${group}/${versions[0].name}`, names.kind));
    for (const version of versions.filter((v) => v.served)) {
      const schema = version.schema?.openAPIV3Schema;
      if (!schema) throw new Error(`${source}: ${group}/${version.name} ${names.kind} has no openAPIV3Schema`);
      const file = `crds/${group}_${names.kind.toLowerCase()}_${version.name}.json`;
      writeJson(dir, file, { $comment: generatedBy(source), ...stripDescriptions(schema) });
      addToIndex(index, `${group}/${version.name}`, names.kind, file);
    }
  }
}

function readVendored(file: string): string {
  if (!existsSync(file)) throw new UserError([`${relative(projectRoot(), file)}: missing; run \`npm run upgrade\` to vendor it`]);
  return readFileSync(file, 'utf8');
}

function addToIndex(index: SchemaIndex, apiVersion: string, kind: string, ref: string): void {
  const kinds = (index.kinds[apiVersion] ??= {});
  if (kinds[kind]) throw new Error(`${apiVersion} ${kind} is defined twice: ${kinds[kind]} and ${ref}`);
  kinds[kind] = ref;
}

function stripDescriptions(schema: JsonSchema): JsonSchema {
  return mapSchema(schema, ({ description: _, ...rest }) => rest);
}

function generatedBy(source: string): string {
  return `generated by npm run import (scripts/import-schemas.ts) from ${source}, do not edit`;
}

function writeJson(dir: string, file: string, value: unknown): void {
  const path = join(dir, file);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(sortKeys(value), null, 2)}\n`);
}

/** Recursively sorts object keys (arrays keep their order: it can be meaningful). */
function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value !== 'object' || value === null) return value;
  const entries = Object.entries(value).sort(([a], [b]) => byCodeUnits(a, b));
  return Object.fromEntries(entries.map(([key, v]) => [key, sortKeys(v)]));
}

