/**
 * The security layer in homelab.yaml: `services.vault` (HashiCorp Vault, standalone or HA with
 * integrated raft storage, on Longhorn) and `services.externalSecrets` (External Secrets
 * Operator, delivering every declared secret from Vault). Checks that need the rest of the
 * environment (nodes, Longhorn) are in `securityServiceIssues`, for the environment-level
 * refinement in ../schema.ts.
 */
import { schedulableNodes } from '../../lib/model/inventory';
import { z } from 'zod';
import type { NodeConfig } from '../../lib/model/config/environment';
import { bool, intBetween, k8sName, resourcesSchema, subdomain, volumeSize } from '../../lib/model/config/primitives';

/** The Vault server container (per replica). */
export const DEFAULT_VAULT_RESOURCES = { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '1', memory: '512Mi' } };
/** The External Secrets controller; its webhook and cert-controller are sized by the construct. */
export const DEFAULT_EXTERNAL_SECRETS_RESOURCES = { requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '500m', memory: '256Mi' } };

export const vaultSchema = z.strictObject({
  enabled: bool.default(false),
  /** 1: standalone (file storage); 3 or 5: HA with integrated raft storage, one pod per node. */
  replicas: intBetween(1, 5)
    .refine((n) => n === 1 || n % 2 === 1, { error: 'expected 1 (standalone) or an odd number for a raft quorum (3 or 5)' })
    .default(1),
  /** Volume of each Vault pod (raft or file storage). */
  storageSize: volumeSize.default('10Gi'),
  /** @default Longhorn's default storage class */
  storageClass: k8sName.optional(),
  resources: resourcesSchema.default(DEFAULT_VAULT_RESOURCES),
  /** The UI at `<subdomain>.<domain>` (an admin exposure). */
  subdomain: subdomain.default('vault'),
});

export const externalSecretsSchema = z.strictObject({
  enabled: bool.default(false),
  /** The controller container. */
  resources: resourcesSchema.default(DEFAULT_EXTERNAL_SECRETS_RESOURCES),
});

export type VaultConfig = z.output<typeof vaultSchema>;
export type ExternalSecretsConfig = z.output<typeof externalSecretsSchema>;

/** What the cross-service checks read from an environment. */
export interface SecurityEnvironment {
  readonly nodes: Readonly<Record<string, NodeConfig>>;
  readonly longhorn: { readonly enabled: boolean; readonly storageClasses: Readonly<Record<string, unknown>> };
  readonly vault: VaultConfig;
  readonly externalSecrets: ExternalSecretsConfig;
}

export interface ConfigIssue {
  /** From the environment's root, e.g. ['services', 'vault', 'replicas']. */
  readonly path: (string | number)[];
  readonly message: string;
}

/** Problems between the security services and the rest of an environment; [] if none. */
export function securityServiceIssues(env: SecurityEnvironment): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const { vault, externalSecrets, longhorn } = env;
  if (vault.enabled) {
    if (!longhorn.enabled) {
      issues.push({ path: ['services', 'vault', 'enabled'], message: 'expected services.longhorn.enabled: Vault keeps its storage on Longhorn' });
    } else if (vault.storageClass && !(vault.storageClass in longhorn.storageClasses)) {
      const known = Object.keys(longhorn.storageClasses).sort().join(', ');
      issues.push({
        path: ['services', 'vault', 'storageClass'],
        message: `expected one of the Longhorn storage classes (${known}), received "${vault.storageClass}"`,
      });
    }
    const schedulable = schedulableNodes(env.nodes);
    if (vault.replicas > schedulable.length) {
      issues.push({
        path: ['services', 'vault', 'replicas'],
        message:
          `expected at most ${schedulable.length} (one Vault pod per schedulable node: ${schedulable.join(', ') || 'none'}; ` +
          `the chart's required pod anti-affinity leaves the others Pending), received ${vault.replicas}`,
      });
    }
  }
  if (externalSecrets.enabled && !vault.enabled) {
    issues.push({ path: ['services', 'externalSecrets', 'enabled'], message: 'expected services.vault.enabled: External Secrets delivers secrets from Vault' });
  }
  return issues;
}
