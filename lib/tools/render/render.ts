/**
 * Renders an environment as Argo CD would: every child Application of `k8s/<env>/apps`, each
 * of its sources turned into objects the way Argo CD's repo-server does, so that the whole set
 * — the upstream charts' objects next to ours — can be checked and diffed before a cluster sees
 * it.
 *
 * - Helm sources: `helm template` of the pinned archive with the Application's release name,
 *   destination namespace, values and parameters, the target Kubernetes version, the API
 *   versions the cluster will serve, and the chart's CRDs (Argo CD passes `--include-crds`
 *   unless `skipCrds`). Test hooks are dropped: Argo CD ignores them.
 * - Kustomize sources: `kubectl kustomize` of the folder with the Application's `images` and
 *   `patches` (Argo CD writes them into the kustomization; an overlay is the same thing).
 * - Directory sources (ours, and upstream folders without a kustomization): every YAML/JSON
 *   file of the folder, not recursing (Argo CD's default).
 * Namespaced objects without a namespace get the Application's destination namespace, as when
 * Argo CD applies them.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { loadAll } from 'js-yaml';
import { stringify } from 'yaml';
import { KUBERNETES_VERSION } from '../../model/kubernetes';
import { scopedKindName } from '../../output/cluster-scoped';
import { UserError } from '../../util/errors';
import { locateTool } from './binaries';
import { chartArchive } from '../upstream/chart-archive';
import { gitSource, SourceCaches } from './sources';

/** An object as Argo CD would apply it, with the Application and the source it comes from. */
export interface RenderedObject {
  readonly application: string;
  /** `chart <name> <version>`, `kustomize <repo> <path>`, or the folder of our own manifests. */
  readonly source: string;
  readonly manifest: Manifest;
  /** Made at run time by an operator from a custom resource of the set (lib/tools/render/operators.ts), not applied by Argo CD. */
  readonly madeByOperator?: boolean;
}

export type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
  };
  [field: string]: any;
};

export interface RenderOptions {
  /** The output tree the Applications are read from, e.g. `k8s`. */
  readonly outdir: string;
  readonly environment: string;
  readonly caches?: SourceCaches;
  /** The built-in API versions the cluster serves (`group/version` and `group/version/Kind`); the environment's CRDs are added. */
  readonly apiVersions: readonly string[];
  /** Built-in kinds (`Kind.group`) that are cluster-scoped (they keep no namespace); the environment's cluster-scoped CRDs are added. */
  readonly clusterScoped: ReadonlySet<string>;
}

/** What the root Application applies: the objects of the environment's apps/ folder (the projects and the child Applications). */
function rootObjects(outdir: string, environment: string): Manifest[] {
  const folder = join(outdir, environment, 'apps');
  if (!existsSync(folder)) throw new UserError([`${folder}: no such folder; run \`npm run synth\` first`]);
  return yamlFiles(folder).flatMap((file) => parseManifests(file));
}

/**
 * The objects of every child Application of the environment, in the steady state: charts are
 * rendered for a cluster that serves the built-in API versions and every CRD the environment
 * installs (charts add ServiceMonitors and the like only where the API exists), so a first pass
 * finds the CRDs and a second renders the charts again with them.
 */
export async function renderEnvironment(options: RenderOptions): Promise<RenderedObject[]> {
  const helm = memo(() => locateTool('helm'));
  const kubectl = memo(() => locateTool('kubectl'));
  const ownRepo = ownRepository(options.outdir, options.environment);
  const root = rootObjects(options.outdir, options.environment);
  const applications = root.filter((m) => m.kind === 'Application').sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  const archives = new Map<object, string>();
  for (const source of applications.flatMap(sourcesOf).filter((s) => s.chart)) {
    archives.set(
      source,
      await chartArchive(
        {
          repoURL: source.repoURL,
          chart: source.chart,
          version: source.targetRevision,
        },
        { chartCache: options.caches?.charts },
      ),
    );
  }
  const pass = (apiVersions: readonly string[], previous?: Map<object, Rendered>) => {
    const rendered = new Map<object, Rendered>();
    for (const app of applications) {
      for (const source of sourcesOf(app)) {
        const earlier = previous?.get(source);
        rendered.set(
          source,
          earlier && !source.chart
            ? earlier
            : renderSource(source, {
                app,
                ownRepo,
                options,
                apiVersions,
                archives,
                helm,
                kubectl,
              }),
        );
      }
    }
    return rendered;
  };
  const first = pass(options.apiVersions);
  const crds = [...first.values()].flatMap((r) => r.objects).filter(isCustomResourceDefinition);
  const served = crds.flatMap((crd) =>
    crd.spec.versions.filter((v: any) => v.served).flatMap((v: any) => [`${crd.spec.group}/${v.name}`, `${crd.spec.group}/${v.name}/${crd.spec.names.kind}`]),
  );
  const apiVersions = [...new Set([...options.apiVersions, ...served])].sort();
  const final = apiVersions.length === options.apiVersions.length ? first : pass(apiVersions, first);
  const clusterScoped = new Set([...options.clusterScoped, ...crds.filter((crd) => crd.spec.scope === 'Cluster').map((crd) => `${crd.spec.names.kind}.${crd.spec.group}`)]);
  return [
    ...root.map((manifest) => ({
      application: `root-${options.environment}`,
      source: `k8s/${options.environment}/apps`,
      manifest,
    })),
    ...applications.flatMap((app) =>
      sourcesOf(app).flatMap((source) => {
        const { label, objects } = final.get(source)!;
        return objects.map((manifest) => ({
          application: app.metadata.name,
          source: label,
          manifest: withNamespace(manifest, app.spec.destination.namespace, clusterScoped),
        }));
      }),
    ),
  ];
}

interface Rendered {
  readonly label: string;
  readonly objects: Manifest[];
}

function sourcesOf(app: Manifest): any[] {
  return app.spec.sources ?? [app.spec.source];
}

function isCustomResourceDefinition(manifest: Manifest): boolean {
  return manifest.kind === 'CustomResourceDefinition' && manifest.apiVersion === 'apiextensions.k8s.io/v1';
}

interface SourceContext {
  readonly app: Manifest;
  readonly ownRepo: string;
  readonly options: RenderOptions;
  readonly apiVersions: readonly string[];
  /** Each chart source's archive. */
  readonly archives: ReadonlyMap<object, string>;
  readonly helm: () => string;
  readonly kubectl: () => string;
}

function renderSource(source: any, ctx: SourceContext): Rendered {
  const caches = ctx.options.caches ?? {};
  if (source.chart) {
    const archive = ctx.archives.get(source)!;
    return {
      label: `chart ${source.chart} ${source.targetRevision}`,
      objects: helmTemplate(archive, source.helm ?? {}, ctx),
    };
  }
  if (source.repoURL === ctx.ownRepo) {
    // Our own sources are `k8s/<env>/<folder>` of this repository: read from the output tree given.
    const folder = join(ctx.options.outdir, relative('k8s', source.path));
    return {
      label: source.path,
      objects: yamlFiles(folder).flatMap((file) => parseManifests(file)),
    };
  }
  const folder = gitSource(source.repoURL, source.targetRevision, source.path, caches);
  const label = `${source.repoURL.replace(/^https:\/\/github\.com\//, '')} ${source.path} ${source.targetRevision}`;
  if (source.kustomize || isKustomization(folder))
    return {
      label,
      objects: kustomizeBuild(folder, source.kustomize ?? {}, ctx),
    };
  return {
    label,
    objects: yamlFiles(folder).flatMap((file) => parseManifests(file)),
  };
}

/**
 * Rendered charts by their inputs (archive, arguments, values): environments often install a
 * chart with the same values, and the second pass often gives the first pass's output.
 */
const helmOutputs = new Map<string, string>();
const parsedOutputs = new Map<string, Manifest[]>();

function helmTemplate(archive: string, helm: any, ctx: SourceContext): Manifest[] {
  const scratch = mkdtempSync(join(tmpdir(), 'homelab-render-'));
  try {
    const args = [
      'template',
      helm.releaseName ?? ctx.app.metadata.name,
      archive,
      '--namespace',
      ctx.app.spec.destination.namespace,
      '--kube-version',
      KUBERNETES_VERSION.replace(/^v/, ''),
      '--include-crds',
    ];
    for (const version of ctx.apiVersions) args.push('--api-versions', version);
    // Later values files win: Argo CD gives valuesObject precedence over values.
    if (helm.values) {
      const values = join(scratch, 'inline-values.yaml');
      writeFileSync(values, helm.values);
      args.push('--values', values);
    }
    if (helm.valuesObject) {
      const values = join(scratch, 'values.yaml');
      writeFileSync(values, stringify(helm.valuesObject));
      args.push('--values', values);
    }
    for (const p of helm.parameters ?? []) args.push(p.forceString ? '--set-string' : '--set', `${p.name}=${p.value}`);
    const key = JSON.stringify([args.map((arg) => (arg.startsWith(scratch) ? readFileSync(arg, 'utf8') : arg))]);
    let output = helmOutputs.get(key);
    if (output === undefined) {
      try {
        output = execFileSync(ctx.helm(), args, {
          encoding: 'utf8',
          maxBuffer: 256 * 1024 * 1024,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      } catch (error) {
        throw new UserError([
          `${ctx.options.environment}/${ctx.app.metadata.name}: helm template ${archive} failed: ${String((error as { stderr?: string }).stderr ?? error).trim()}`,
        ]);
      }
      helmOutputs.set(key, output);
    }
    let parsed = parsedOutputs.get(output);
    if (!parsed) {
      parsed = parseYamlStream(output, archive).filter((m) => !isTestHook(m));
      parsedOutputs.set(output, parsed);
    }
    // Callers add namespaces to copies; the shared objects stay as helm wrote them.
    return parsed;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Argo CD ignores Helm's test hooks (`test`, and Helm 2's `test-success`/`test-failure`). */
function isTestHook(manifest: Manifest): boolean {
  const hooks = manifest.metadata.annotations?.['helm.sh/hook'];
  return hooks !== undefined && hooks.split(',').every((hook) => hook.trim().startsWith('test'));
}

function kustomizeBuild(folder: string, kustomize: any, ctx: SourceContext): Manifest[] {
  const overlay = mkdtempSync(join(tmpdir(), 'homelab-kustomize-'));
  try {
    const kustomization = {
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: [relative(overlay, folder)],
      ...(kustomize.images && { images: kustomize.images.map(imageOverride) }),
      ...(kustomize.patches && { patches: kustomize.patches }),
      ...(kustomize.namespace && { namespace: kustomize.namespace }),
    };
    writeFileSync(join(overlay, 'kustomization.yaml'), stringify(kustomization));
    let output: string;
    try {
      output = execFileSync(ctx.kubectl(), ['kustomize', overlay], {
        encoding: 'utf8',
        maxBuffer: 256 * 1024 * 1024,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (error) {
      throw new UserError([
        `${ctx.options.environment}/${ctx.app.metadata.name}: kustomize build of ${folder} failed: ${String((error as { stderr?: string }).stderr ?? error).trim()}`,
      ]);
    }
    return parseYamlStream(output, folder);
  } finally {
    rmSync(overlay, { recursive: true, force: true });
  }
}

/** Argo CD's `images` entries (`name=newName[:tag|@digest]`, `name:tag`) as a kustomization's images. */
export function imageOverride(image: string): Record<string, string> {
  const [name, replacement] = image.includes('=') ? image.split('=', 2) : [repositoryOf(image), image];
  const digest = replacement.indexOf('@');
  if (digest >= 0) return { name, newName: replacement.slice(0, digest), digest: replacement.slice(digest + 1) };
  const repository = repositoryOf(replacement);
  return repository === replacement ? { name, newName: replacement } : { name, newName: repository, newTag: replacement.slice(repository.length + 1) };
}

/** An image reference without its tag or digest (a registry's `host:port` is not a tag). */
function repositoryOf(image: string): string {
  const withoutDigest = image.split('@')[0];
  const colon = withoutDigest.lastIndexOf(':');
  return colon > withoutDigest.lastIndexOf('/') ? withoutDigest.slice(0, colon) : withoutDigest;
}

function isKustomization(folder: string): boolean {
  return ['kustomization.yaml', 'kustomization.yml', 'Kustomization'].some((file) => existsSync(join(folder, file)));
}

function withNamespace(manifest: Manifest, namespace: string, clusterScoped: ReadonlySet<string>): Manifest {
  if (manifest.metadata.namespace || clusterScoped.has(scopedKindName(manifest.apiVersion, manifest.kind))) return manifest;
  return { ...manifest, metadata: { ...manifest.metadata, namespace } };
}

/** The repository the environment's root Application syncs from: sources there are our own manifests. */
function ownRepository(outdir: string, environment: string): string {
  const folder = join(outdir, environment, 'bootstrap');
  const root = existsSync(folder)
    ? yamlFiles(folder)
        .flatMap((file) => parseManifests(file))
        .find((m) => m.kind === 'Application')
    : undefined;
  if (!root) throw new UserError([`${folder}: no root Application; run \`npm run synth\` first`]);
  return root.spec.source.repoURL;
}

function yamlFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.(ya?ml|json)$/.test(entry.name))
    .map((entry) => join(folder, entry.name))
    .sort();
}

function parseManifests(file: string): Manifest[] {
  return parseYamlStream(readFileSync(file, 'utf8'), file);
}

/**
 * The objects of a YAML stream. js-yaml (its default schema: plain data, no custom types)
 * rather than yaml: charts render megabytes (CRDs) and it parses them five times faster.
 */
function parseYamlStream(text: string, origin: string): Manifest[] {
  let documents: unknown[];
  try {
    documents = loadAll(text);
  } catch (error) {
    throw new UserError([`${origin}: invalid YAML: ${(error as Error).message.split('\n')[0]}`]);
  }
  return documents.flatMap((value) => {
    if (value === null || typeof value !== 'object') return [];
    const manifest = value as Manifest;
    // A List (kubectl's and some charts' way of grouping) is its items.
    return manifest.kind?.endsWith('List') && Array.isArray(manifest.items) ? (manifest.items as Manifest[]) : [manifest];
  });
}

function memo<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}
