/**
 * Secret delivery: every Secret a service declared (`needSecret`) becomes, where the platform
 * runs Vault and External Secrets, an ExternalSecret reading `<mount>/<service>/<secret>`
 * through a namespaced SecretStore that logs in to Vault as the service's own ServiceAccount
 * and role — whose policy reads only that service's subtree (docs/adr/0010). The Vault side
 * (roles, policies) goes to the Vault configurator from the same list.
 *
 * Where the objects live: a consumer that must be up before External Secrets exists (in the
 * dependency closure of Vault or External Secrets, e.g. Longhorn whose volumes Vault uses, or
 * in a layer before security with `waves: sequential`) cannot wait for them; its store and
 * ExternalSecrets are rendered into the external-secrets service (they sync after Vault, into
 * the consumer's namespace). Every other consumer carries them in its own folder, and the CRD
 * edge orders it after External Secrets.
 */
import { Construct } from 'constructs';
import { ExternalSecrets } from '../../charts/external-secrets';
import { Vault } from '../../charts/vault';
import { KUBERNETES_AUTH_MOUNT, VAULT_AUDIENCE } from '../../charts/vault-configurator';
import {
  ExternalSecret,
  ExternalSecretSpecSecretStoreRefKind,
  ExternalSecretSpecTargetCreationPolicy,
} from '../../imports/external-secrets-external-secrets.io';
import { SecretStore, SecretStoreSpecProviderVaultVersion } from '../../imports/external-secrets-secretstore-external-secrets.io';
import { k8s } from 'cdk8s-plus-28';
import { DependencyGraph, dependencyGraph } from './graph';
import { LAYER_ORDER } from '../model/layers';
import type { Platform } from '../model/platform';
import { SecretNeed, VAULT_KV_MOUNT, vaultAccess, VaultAccess, vaultPath } from '../model/secrets';
import type { HomelabService } from '../model/service';

/** How External Secrets refreshes a delivered Secret from Vault. */
const REFRESH_INTERVAL = '1h';

/** One declared Secret and where its value comes from, for the operator (synth summary). */
export interface SecretNeedSource extends SecretNeed {
  /** `<mount>/<service>/<secret>` when delivered from Vault; undefined: create the Secret by hand. */
  readonly vaultPath?: string;
  /** The service whose Argo CD Application carries the ExternalSecret. */
  readonly deliveredBy?: string;
}

/**
 * Emits the delivery of every declared Secret and configures Vault; returns every need with
 * its source. Call before the final dependency graph: the graph before delivery tells which
 * consumers cannot wait for External Secrets.
 */
export function deliverSecrets(platform: Platform): SecretNeedSource[] {
  const externalSecrets = platform.services.find(ExternalSecrets.isExternalSecrets);
  const consumers = platform.services.filter((s) => s.secretNeeds.length > 0);
  if (!externalSecrets) {
    // Vault alone still gets its engine and auth method; the Secrets are made by hand.
    platform.services.find(Vault.isVault)?._configure([]);
    return consumers.flatMap((s) => s.secretNeeds.map((need) => ({ ...need })));
  }
  const vault = externalSecrets.vault;
  const early = cannotWaitFor(externalSecrets, vault, platform, dependencyGraph(platform, platform.config.waves));
  const access: VaultAccess[] = [];
  const sources: SecretNeedSource[] = [];
  for (const consumer of consumers) {
    const host = early.has(consumer.serviceName) ? externalSecrets : consumer;
    const grant = vaultAccess(consumer.serviceName, consumer.namespaceName);
    new ServiceSecretDelivery(host, `secret-delivery-${consumer.serviceName}`, { consumer, vault, access: grant });
    access.push(grant);
    for (const need of consumer.secretNeeds) {
      sources.push({ ...need, vaultPath: `${VAULT_KV_MOUNT}/${vaultPath(need)}`, deliveredBy: host.serviceName });
    }
  }
  vault._configure(access, { path: vaultPath(externalSecrets.probe), key: externalSecrets.probe.keys[0] });
  return sources;
}

/**
 * Services that sync before External Secrets can deliver to them: Vault's and External
 * Secrets' own dependencies (transitively), and with `waves: sequential` every service of an
 * earlier layer (a later-layer CRD would leave their sync failing until the wave never comes).
 */
function cannotWaitFor(externalSecrets: ExternalSecrets, vault: Vault, platform: Platform, graph: DependencyGraph): Set<string> {
  const dependsOn = new Map(graph.nodes.map((n) => [n.name, n.dependsOn]));
  const early = new Set<string>();
  const visit = (name: string) => {
    for (const dep of dependsOn.get(name) ?? []) {
      if (!early.has(dep)) {
        early.add(dep);
        visit(dep);
      }
    }
  };
  visit(vault.serviceName);
  visit(externalSecrets.serviceName);
  if (platform.config.waves === 'sequential') {
    const layer = LAYER_ORDER.indexOf(externalSecrets.layer);
    for (const service of platform.services) if (LAYER_ORDER.indexOf(service.layer) < layer) early.add(service.serviceName);
  }
  return early;
}

interface ServiceSecretDeliveryProps {
  readonly consumer: HomelabService;
  readonly vault: Vault;
  readonly access: VaultAccess;
}

/** One consumer's ServiceAccount, SecretStore and ExternalSecrets, in its namespace, created in the host's tree. */
class ServiceSecretDelivery extends Construct {
  constructor(host: HomelabService, id: string, props: ServiceSecretDeliveryProps) {
    super(host, id);
    const { consumer, vault, access } = props;
    const namespace = consumer.namespaceName;
    const labels = host.labelsFor('secrets');
    const store = `${consumer.serviceName}-vault`;
    new k8s.KubeServiceAccount(this, 'account', {
      metadata: { name: access.serviceAccount, namespace, labels },
      // Only External Secrets uses it, through the TokenRequest API: no pod mounts its token.
      automountServiceAccountToken: false,
    });
    new SecretStore(this, 'store', {
      metadata: { name: store, namespace, labels },
      spec: {
        provider: {
          vault: {
            server: vault.address,
            path: VAULT_KV_MOUNT,
            version: SecretStoreSpecProviderVaultVersion.V2,
            auth: {
              kubernetes: {
                mountPath: KUBERNETES_AUTH_MOUNT,
                role: access.role,
                serviceAccountRef: { name: access.serviceAccount, audiences: [VAULT_AUDIENCE] },
              },
            },
          },
        },
      },
    });
    for (const need of consumer.secretNeeds) {
      new ExternalSecret(this, `secret-${need.name}`, {
        metadata: { name: need.name, namespace, labels, annotations: { 'homelab.dev/purpose': need.purpose } },
        spec: {
          refreshInterval: REFRESH_INTERVAL,
          secretStoreRef: { kind: ExternalSecretSpecSecretStoreRefKind.SECRET_STORE, name: store },
          target: { name: need.name, creationPolicy: ExternalSecretSpecTargetCreationPolicy.OWNER },
          data: need.keys.map((key) => ({ secretKey: key, remoteRef: { key: vaultPath(need), property: key } })),
        },
      });
    }
  }
}
