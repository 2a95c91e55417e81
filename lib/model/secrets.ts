/**
 * Secrets as a declaration of the service model: a service states once which Secret it
 * needs and its key names (HomelabService.needSecret). From that single declaration come
 * the consuming pod's env/volume references (SecretRef), and — where the platform has a
 * secret backend and a delivery service (Vault and External Secrets) — the objects that
 * deliver the Secret and the access that lets only that service read its own values (the
 * secret-delivery pass). Without them, the operator creates the Secret by hand (synth lists
 * it). Values never pass through Git.
 */
import type { k8s } from 'cdk8s-plus-34';
import type { HomelabService } from './service';

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
  /** Whether the Application needs it to become Healthy (HomelabService.needSecret). */
  readonly neededToStart: boolean;
  /**
   * Random values the backend writes itself where none are stored yet (credentials the platform
   * hands out, such as a consumer's bucket keys): the operator never types them. @default false
   */
  readonly generated?: boolean;
  /**
   * Values composed from other services' Secrets in the backend (the object store's identities
   * from every consumer's keys): the backend lets this need's service read exactly those, and the
   * delivery renders `data`. @default the need's own values, one per key
   */
  readonly template?: SecretTemplate;
  /**
   * Labels the Secret must carry: a consumer that finds its Secrets by label (Argo CD reads a
   * `$<secret>:<key>` reference only from a Secret labelled `app.kubernetes.io/part-of: argocd`).
   * @default none
   */
  readonly labels?: Readonly<Record<string, string>>;
}

/** A Secret whose keys are rendered from values of other declared Secrets. */
export interface SecretTemplate {
  /** Template variables, each one key of another service's declared Secret. */
  readonly inputs: readonly { readonly variable: string; readonly from: SecretNeed; readonly key: string }[];
  /** Key → text in External Secrets' template language (v2, Go templates): `{{ index . "<variable>" }}`. */
  readonly data: Readonly<Record<string, string>>;
}

/** Keys of S3 credentials as the AWS SDKs read them from the environment (Loki, Triton). */
export const S3_CREDENTIAL_KEYS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'] as const;

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

  /** Each of `keys` to its selector: a checkpoint's `secretEnv`, variable names as the keys. */
  keySelectors(keys: readonly string[]): Record<string, { readonly name: string; readonly key: string }> {
    return Object.fromEntries(keys.map((key) => [key, this.keySelector(key)]));
  }

  /** An environment variable read from one of the Secret's keys. */
  envVar(name: string, key: string = name): k8s.EnvVar {
    return { name, valueFrom: { secretKeyRef: this.keySelector(key) } };
  }
}

/**
 * Where the values of declared Secrets live (Vault). The secret-delivery pass hands it every
 * service that reads secrets, so that each can read its own values and nothing else.
 */
export interface SecretBackend extends HomelabService {
  /** Where the operator puts a need's values, e.g. `Vault homelab/n8n/n8n-encryption-key`. */
  locationOf(need: SecretNeed): string;
  /**
   * Called once with every service whose Secrets are delivered (none without a delivery
   * service), and the delivery service's probe, whose value the backend writes itself.
   */
  grantAccess(consumers: readonly HomelabService[], probe?: SecretNeed): void;
}

export function isSecretBackend(service: HomelabService): service is SecretBackend {
  return typeof (service as Partial<SecretBackend>).grantAccess === 'function';
}

/** Delivers declared Secrets from the backend into the consumers' namespaces (External Secrets). */
export interface SecretDelivery extends HomelabService {
  readonly backend: SecretBackend;
  /** A need of its own whose delivery proves the whole chain (its checkpoint waits for it). */
  readonly probe: SecretNeed;
  /**
   * Emits, in `host`'s construct tree, what delivers every Secret `consumer` declared: the
   * consumer's own tree, or the delivery service's for consumers that cannot wait for it.
   */
  deliverTo(consumer: HomelabService, host: HomelabService): void;
}

export function isSecretDelivery(service: HomelabService): service is SecretDelivery {
  return typeof (service as Partial<SecretDelivery>).deliverTo === 'function';
}
