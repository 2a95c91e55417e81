import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';
import { describe, expect, it } from 'vitest';
import { CORE_SCHEMA, load } from 'js-yaml';
import type { ArgoCdValues } from '../imports/helm/argo-cd';
import type { KubePrometheusStackValues } from '../imports/helm/kube-prometheus-stack';
import type { LokiValues } from '../imports/helm/loki';
import type { LonghornValues } from '../imports/helm/longhorn';
import type { VaultValues } from '../imports/helm/vault';
import { helmValuesErrors } from '../lib/tools/validate/helm-values';
import { HELM_VALUES_IMPORTS, HELM_IMPORTS } from '../scripts/import-helm-values';
import { VENDORED_CHARTS } from '../scripts/upstream-inputs';

const CHART_FOLDERS = Object.keys(HELM_VALUES_IMPORTS);

function generatedSchema(folder: string): object {
  return JSON.parse(readFileSync(join(HELM_IMPORTS, `${folder}.schema.json`), 'utf8')) as object;
}

describe('helmValuesErrors, charts without a values.schema.json', () => {
  it('rejects a misspelled key', () => {
    expect(helmValuesErrors('argo-cd', { server: { ingres: { enabled: true } } })).toEqual(['server.ingres: unknown key']);
    expect(helmValuesErrors('longhorn', { persistence: { defaultClassReplicaCnt: 3 } })).toEqual([
      'persistence.defaultClassReplicaCnt: unknown key',
    ]);
    // defaultSettings lists every setting the chart renders; others would be dropped silently.
    expect(helmValuesErrors('longhorn', { defaultSettings: { defaultReplicaCnt: 2 } })).toEqual(['defaultSettings.defaultReplicaCnt: unknown key']);
  });

  it('rejects the string "false" where the chart wants a boolean (it would be truthy in the templates)', () => {
    expect(helmValuesErrors('argo-cd', { server: { ingress: { enabled: 'false' } } })).toEqual(['server.ingress.enabled: must be boolean']);
    expect(helmValuesErrors('longhorn', { preUpgradeChecker: { jobEnabled: 'false' } })).toEqual([
      'preUpgradeChecker.jobEnabled: must be boolean',
    ]);
  });

  it('accepts real values, including keys of open maps and int-or-string fields', () => {
    const longhorn: LonghornValues = {
      preUpgradeChecker: { jobEnabled: false },
      persistence: { defaultClassReplicaCount: 3 },
      defaultSettings: { defaultReplicaCount: '2' },
    };
    const argoCd: ArgoCdValues = {
      global: { domain: 'argocd.example.com' },
      configs: {
        params: { 'server.insecure': true },
        cm: { 'resource.customizations.health.argoproj.io_Application': 'lua' },
      },
      server: { ingress: { enabled: true, ingressClassName: 'traefik' }, pdb: { enabled: true, minAvailable: 1 } },
      controller: { resources: { requests: { cpu: '250m', memory: '512Mi' } } },
      'redis-ha': { enabled: false, haproxy: { replicas: 1 } },
    };
    expect(helmValuesErrors('longhorn', longhorn)).toEqual([]);
    expect(helmValuesErrors('argo-cd', argoCd)).toEqual([]);
  });

  it('accepts the keys documented only in comments that the config table adds', () => {
    const kubePrometheusStack: KubePrometheusStackValues = {
      prometheus: {
        prometheusSpec: {
          retention: '15d',
          storageSpec: {
            volumeClaimTemplate: { spec: { storageClassName: 'longhorn', resources: { requests: { storage: '50Gi' } } } },
          },
        },
        podDisruptionBudget: { enabled: true, maxUnavailable: 1 },
      },
      alertmanager: { config: { route: { receiver: 'null' }, receivers: [{ name: 'null' }] } },
      grafana: { adminPassword: 'change-me', persistence: { enabled: true } },
    };
    expect(helmValuesErrors('kube-prometheus-stack', kubePrometheusStack)).toEqual([]);
    expect(helmValuesErrors('argo-cd', { notifications: { metrics: { serviceMonitor: { interval: '30s' } } } })).toEqual([]);
  });
});

describe('helmValuesErrors, charts with a values.schema.json', () => {
  it('rejects a wrong type', () => {
    expect(helmValuesErrors('vault', { server: { ha: { replicas: 'three' } } })).toEqual(['server.ha.replicas: must be integer']);
  });

  it('rejects a misspelled key in a schema that leaves objects open (tightened from values.yaml)', () => {
    expect(helmValuesErrors('vault', { server: { dataStorge: { size: '10Gi' } } })).toEqual(['server.dataStorge: unknown key']);
  });

  it('accepts real values', () => {
    const vault: VaultValues = {
      server: { ha: { enabled: true, replicas: 3, raft: { enabled: true, config: 'ui = true' } }, dataStorage: { storageClass: 'longhorn' } },
      injector: { enabled: '-' },
    };
    const loki: LokiValues = {
      deploymentMode: 'SingleBinary',
      loki: {
        auth_enabled: false,
        commonConfig: { replication_factor: 1 },
        storage: { type: 'filesystem' },
        schemaConfig: {
          configs: [{ from: '2024-04-01', store: 'tsdb', object_store: 'filesystem', schema: 'v13', index: { prefix: 'loki_index_', period: '24h' } }],
        },
      },
      singleBinary: { replicas: 1 },
      read: { replicas: 0 },
      write: { replicas: 0 },
      backend: { replicas: 0 },
    };
    expect(helmValuesErrors('vault', vault)).toEqual([]);
    expect(helmValuesErrors('loki', loki)).toEqual([]);
  });
});

describe('generated types', () => {
  it('reject what the run-time check rejects', () => {
    const misspelled: ArgoCdValues = {
      server: {
        // @ts-expect-error misspelled key (ingress)
        ingres: { enabled: true },
      },
    };
    const stringForBoolean: ArgoCdValues = {
      // @ts-expect-error the chart wants a boolean
      server: { ingress: { enabled: 'false' } },
    };
    const longhornMisspelled: LonghornValues = {
      persistence: {
        // @ts-expect-error misspelled key (defaultClassReplicaCount)
        defaultClassReplicaCnt: 3,
      },
    };
    const longhornStringForBoolean: LonghornValues = {
      // @ts-expect-error the chart wants a boolean
      preUpgradeChecker: { jobEnabled: 'false' },
    };
    expect(helmValuesErrors('argo-cd', misspelled)).toHaveLength(1);
    expect(helmValuesErrors('argo-cd', stringForBoolean)).toHaveLength(1);
    expect(helmValuesErrors('longhorn', longhornMisspelled)).toHaveLength(1);
    expect(helmValuesErrors('longhorn', longhornStringForBoolean)).toHaveLength(1);
  });
});

describe.each(CHART_FOLDERS)('imports/helm/%s', (folder) => {
  it('is a valid draft-07 schema that accepts empty values', () => {
    expect(new Ajv({ strict: false }).validateSchema(generatedSchema(folder))).toBe(true);
    expect(helmValuesErrors(folder, {})).toEqual([]);
  });

  it("accepts the chart's own default values.yaml", () => {
    // Read as the linter reads YAML (YAML 1.2 core, js-yaml): the yaml package's reading of these
    // 1.2 MB took ten times as long, for the same values in every vendored chart.
    const defaults: unknown = load(readFileSync(join(VENDORED_CHARTS, folder, 'values.yaml'), 'utf8'), { schema: CORE_SCHEMA });
    expect(helmValuesErrors(folder, defaults)).toEqual([]);
  });
});
