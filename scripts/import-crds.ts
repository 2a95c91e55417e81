/**
 * Offline `cdk8s import`: regenerates the CRD classes in imports/ from the upstream CRD
 * copies in ../shared/crds, one module per entry of cdk8s.yaml's `imports`.
 * With network access, `npx cdk8s import` does the same from the upstream URLs.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../lib/util/project';
import { parse } from 'yaml';

export const SHARED_CRDS = join(projectRoot(), '..', 'shared', 'crds');

/** Local copies (relative to ../shared/crds) of what each cdk8s.yaml import URL serves. */
export const LOCAL_CRD_SOURCES: Readonly<Record<string, readonly string[]>> = {
  'argocd-application': ['argocd/application-crd.yaml'],
  'argocd-appproject': ['argocd/appproject-crd.yaml'],
  longhorn: [
    'longhorn/backuptargets.longhorn.io.yaml',
    'longhorn/recurringjobs.longhorn.io.yaml',
    'longhorn/settings.longhorn.io.yaml',
  ],
  'rabbitmq-cluster': ['rabbitmq/rabbitmq.com_rabbitmqclusters.yaml'],
  'rabbitmq-topology': [
    'rabbitmq-topology/rabbitmq.com_bindings.yaml',
    'rabbitmq-topology/rabbitmq.com_exchanges.yaml',
    'rabbitmq-topology/rabbitmq.com_permissions.yaml',
    'rabbitmq-topology/rabbitmq.com_policies.yaml',
    'rabbitmq-topology/rabbitmq.com_queues.yaml',
    'rabbitmq-topology/rabbitmq.com_users.yaml',
    'rabbitmq-topology/rabbitmq.com_vhosts.yaml',
  ],
  'kuberay-raycluster': ['kuberay/ray.io_rayclusters.yaml'],
  'prometheus-servicemonitor': ['prometheus-operator/monitoring.coreos.com_servicemonitors.yaml'],
  'prometheus-podmonitor': ['prometheus-operator/monitoring.coreos.com_podmonitors.yaml'],
  'prometheus-prometheusrule': ['prometheus-operator/monitoring.coreos.com_prometheusrules.yaml'],
  traefik: ['traefik/traefik.io_ingressroutes.yaml'],
  'traefik-middleware': ['traefik/traefik.io_middlewares.yaml'],
  'cert-manager': [
    'cert-manager/cert-manager.io_certificates.yaml',
    'cert-manager/cert-manager.io_clusterissuers.yaml',
    'cert-manager/cert-manager.io_issuers.yaml',
  ],
  'external-secrets': ['external-secrets/external-secrets.io_externalsecrets.yaml'],
  'external-secrets-clustersecretstore': ['external-secrets/external-secrets.io_clustersecretstores.yaml'],
  'external-secrets-secretstore': ['external-secrets/external-secrets.io_secretstores.yaml'],
};

/** Module names listed in cdk8s.yaml, in order. */
export function importModules(): string[] {
  const project = parse(readFileSync(join(projectRoot(), 'cdk8s.yaml'), 'utf8')) as { imports: string[] };
  return project.imports.map((spec) => spec.split(':=')[0]);
}

export function importCrds(): void {
  const work = mkdtempSync(join(tmpdir(), 'crd-import-'));
  try {
    for (const module of importModules()) {
      const files = LOCAL_CRD_SOURCES[module];
      if (!files) throw new Error(`cdk8s.yaml import "${module}" has no local copy in LOCAL_CRD_SOURCES`);
      const bundle = join(work, `${module}.yaml`);
      writeFileSync(bundle, files.map((f) => readFileSync(join(SHARED_CRDS, f), 'utf8')).join('\n---\n'));
      execFileSync(
        join(projectRoot(), 'node_modules', '.bin', 'cdk8s'),
        ['import', `${module}:=${bundle}`, '--language', 'typescript', '--output', 'imports', '--no-save', '--no-check-upgrade'],
        { cwd: projectRoot(), stdio: 'inherit' },
      );
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (require.main === module) importCrds();
