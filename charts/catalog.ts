/**
 * The built-in catalog: every service the platform knows, in the order an environment creates
 * them — which is also the order the end-to-end verification replays their checkpoints in.
 * An entry may use (require) only entries listed before it. Adding a service is its file
 * (construct and entry) plus one line here.
 */
import { defineCatalog } from '../lib/model/catalog';
import { alloyEntry } from './alloy';
import { argoCdEntry } from './argocd';
import { authentikEntry } from './authentik';
import { certManagerEntry } from './cert-manager';
import { cloudflaredEntry } from './cloudflared';
import { cloudnativePgEntry } from './cloudnative-pg';
import { dcgmExporterEntry } from './dcgm-exporter';
import { appsEntry } from './custom-app';
import { externalDnsEntry } from './external-dns';
import { externalSecretsEntry } from './external-secrets';
import { monitoringEntry, prometheusOperatorCrdsEntry } from './kube-prometheus-stack';
import { lokiEntry } from './loki';
import { longhornEntry } from './longhorn';
import { n8nEntry } from './n8n';
import { networkPoliciesEntry } from './network-policies';
import { nvidiaDevicePluginEntry } from './nvidia-device-plugin';
import { rabbitmqEntry } from './rabbitmq';
import { rayEntry } from './ray';
import { seaweedfsEntry } from './seaweedfs';
import { tempoEntry } from './tempo';
import { traefikEntry } from './traefik';
import { tritonEntry } from './triton';
import { vaultEntry } from './vault';
import { verificationEntry } from './verification';

export const BUILTIN_CATALOG = defineCatalog([
  argoCdEntry,
  longhornEntry,
  cloudnativePgEntry,
  // Monitors and rules need only the CRDs: first wave, long before the stack itself.
  prometheusOperatorCrdsEntry,
  rabbitmqEntry,
  nvidiaDevicePluginEntry,
  dcgmExporterEntry,
  rayEntry,
  certManagerEntry,
  vaultEntry,
  externalSecretsEntry,
  // Object storage: its identities come from Vault through External Secrets.
  seaweedfsEntry,
  // Its model repository may be a bucket of the object store.
  tritonEntry,
  lokiEntry,
  tempoEntry,
  alloyEntry,
  n8nEntry,
  // Single sign-on: its database from CloudNativePG, its keys from Vault; before the apps and
  // Traefik, which hand it their protected exposures.
  authentikEntry,
  appsEntry,
  networkPoliciesEntry,
  monitoringEntry,
  traefikEntry,
  cloudflaredEntry,
  // The records of the hosts Traefik routes, the tunnel's among them.
  externalDnsEntry,
  verificationEntry,
]);
