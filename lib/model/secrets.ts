/**
 * Secrets as a declaration of the service model: a service states once which Secret it
 * needs and its key names (HomelabService.needSecret). From that single declaration come
 * the consuming pod's env/volume references (SecretRef), and — where the platform runs
 * Vault and External Secrets — the ExternalSecret that delivers the Secret and the Vault
 * policy that lets only that service read its own path. Without them, the operator
 * creates the Secret by hand (synth lists it). Values never pass through Git.
 */
import type { k8s } from 'cdk8s-plus-28';

/** KV v2 secrets engine holding every service's secrets: `<mount>/<service>/<secret>`. */
export const VAULT_KV_MOUNT = 'homelab';

/** A Secret a service needs, by name and key names; its values live in Vault or are made by hand. */
export interface SecretNeed {
  /** The consuming service. */
  readonly service: string;
  /** Namespace of the Secret (the consuming service's). */
  readonly namespace: string;
  /** Kubernetes Secret name. */
  readonly name: string;
  /** Key names the Secret must hold. */
  readonly keys: readonly string[];
  /** What the secret is for, shown to the operator who fills it in. */
  readonly purpose: string;
}

/** Keys of S3 credentials as the AWS SDKs read them from the environment (Loki, Triton). */
export const S3_CREDENTIAL_KEYS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'] as const;

/** Path of a need's values in the KV engine (without the mount): `<service>/<secret>`. */
export function vaultPath(need: Pick<SecretNeed, 'service' | 'name'>): string {
  return `${need.service}/${need.name}`;
}

/** A handle on a declared Secret: how consumers reference its keys. */
export class SecretRef {
  constructor(readonly need: SecretNeed) {}

  get secretName(): string {
    return this.need.name;
  }

  get keys(): readonly string[] {
    return this.need.keys;
  }

  /** `{ name, key }` for charts and `secretKeyRef`s; only declared keys. */
  keySelector(key: string): { readonly name: string; readonly key: string } {
    if (!this.need.keys.includes(key)) {
      throw new Error(`${this.need.service}: secret ${this.need.name} declares no key "${key}" (declared: ${this.need.keys.join(', ')})`);
    }
    return { name: this.need.name, key };
  }

  /** An environment variable read from one of the Secret's keys. */
  envVar(name: string, key: string = name): k8s.EnvVar {
    return { name, valueFrom: { secretKeyRef: this.keySelector(key) } };
  }
}

/**
 * Prefix of the Vault roles and policies the configurator Job manages (one of each per
 * consuming service): the Job removes those with this prefix that are no longer declared.
 */
export const MANAGED_VAULT_PREFIX = 'homelab-';

/** How one consuming service reads its own secrets: its Kubernetes identity and its Vault role and policy. */
export interface VaultAccess {
  readonly service: string;
  readonly namespace: string;
  /** ServiceAccount External Secrets logs in to Vault as (Kubernetes auth). */
  readonly serviceAccount: string;
  /** Vault role bound to that ServiceAccount, and policy (same name) granting read on `policyPath`. */
  readonly role: string;
  /** `<mount>/data/<service>/*`: the service's own subtree of the KV engine, read-only. */
  readonly policyPath: string;
}

export function vaultAccess(service: string, namespace: string): VaultAccess {
  return {
    service,
    namespace,
    serviceAccount: `${service}-secrets`,
    role: `${MANAGED_VAULT_PREFIX}${service}`,
    policyPath: `${VAULT_KV_MOUNT}/data/${service}/*`,
  };
}
