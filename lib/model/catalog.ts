/**
 * The catalog: the only place that knows which services exist. Each service is one entry
 * saying, in one place, where its settings live in homelab.yaml and their schema (every
 * default stated there), the names it takes, the services it requires (a config error when
 * they are disabled), its other checks against the environment, and how it is built from its
 * settings and the services it gets. The config schema, the cross-service checks, the list of
 * known keys and the wiring of an environment all come from the entries (lib/model/config/
 * environment.ts and `buildServices` below); the core never imports a service.
 */
import type { z } from './config/zod';
import { BACKUP_CREDENTIALS, BackupSettings } from './backup';
import type { Inventory } from './inventory';
import type { Platform } from './platform';
import type { HomelabService } from './service';

/** A config problem; its path goes from the entry's own settings (made absolute by the core). */
export interface ConfigIssue {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/** Another entry that must be enabled, and why. */
export interface Requirement {
  readonly entry: ServiceEntry<any, any>;
  /** Where in the requiring entry's settings the need comes from, e.g. `['database', 'sqlite']`. */
  readonly path: readonly (string | number)[];
  /** Printed after `expected services.<key>.enabled:`, e.g. 'RabbitMQ keeps its data on Longhorn'. */
  readonly reason: string;
}

/** A public subdomain an entry's settings route (subdomains must be unique per environment). */
export interface SubdomainClaim {
  /** Path inside the entry's settings, e.g. `['grafana', 'subdomain']`. */
  readonly path: readonly (string | number)[];
  readonly subdomain: string;
}

/** What an entry's checks see of the environment besides its own settings. */
export interface EnvironmentView {
  readonly nodes: Inventory;
  /** The environment's backup target (`backup`), if it has one. */
  readonly backup?: BackupSettings;
  /** The settings of another entry (with settings). */
  settingsOf<S>(entry: ServiceEntry<S, any>): S;
  isEnabled(entry: ServiceEntry<any, any>): boolean;
  /** Names of the enabled services created before this entry's: what it can reference by name. */
  readonly servicesBefore: ReadonlySet<string>;
  /** Names taken by the output folders, the services and their namespaces, except this entry's own. */
  readonly reservedNames: ReadonlySet<string>;
  /** Whether an enabled entry provides single sign-on (`sso` and `oidc` exposures, lib/model/single-sign-on.ts). */
  readonly singleSignOn: boolean;
}

/** What an entry's `build` gets besides its settings. */
export interface BuildContext {
  /** What a required entry built (its `requires` make that a config error otherwise). */
  required<B>(entry: ServiceEntry<any, B>): B;
  /** What an entry built, or undefined when it is disabled. */
  optional<B>(entry: ServiceEntry<any, B>): B | undefined;
  /** Every service of the platform created so far. */
  readonly services: readonly HomelabService[];
}

/** Where an entry's settings live in homelab.yaml. */
export interface EntrySettings<S> {
  /** `services.<key>`, or `<key>` at the top level with `topLevel`. */
  readonly key: string;
  /** @default false */
  readonly topLevel?: boolean;
  /**
   * The settings and every default, stated once. It must accept a missing value (`prefault({})`
   * or `default(...)`), so that an environment without the key gets the defaults.
   */
  readonly schema: z.ZodType<S, any>;
}

/**
 * A scrape target that an upstream chart or operator creates (not in k8s/), by the name of the
 * ServiceMonitor/PodMonitor (`<service>-<endpoint>`) that selects it, with the labels and
 * port name verified in its source: `npm run lint:k8s` accepts a monitor that selects nothing
 * in k8s/ only when it selects exactly this.
 */
export interface UpstreamTarget {
  readonly selector: Readonly<Record<string, string>>;
  readonly port: string;
  readonly source: string;
}

export interface ServiceEntry<S = unknown, B = unknown> {
  /** The entry's name in messages, usually its service's name. */
  readonly name: string;
  /** Its settings in homelab.yaml. @default none: a companion, enabled by `enabled` alone */
  readonly settings?: EntrySettings<S>;
  /**
   * Whether the environment gets the service. @default the `enabled` setting
   */
  enabled?(settings: S, env: EnvironmentView): boolean;
  /**
   * Application (folder) names and namespaces the entry takes, whether enabled or not: no app may
   * use them. Every service it builds is named here or in `serviceNames` (`buildServices` holds it
   * to that), its main service first.
   */
  readonly names: readonly string[];
  /**
   * The services other entries may name (an app's `dependsOn`) once enabled: services it builds
   * (`buildServices` holds it to that). One not in `names` is the entry's to keep apart from every
   * other entry's names (the apps do, charts/custom-app.ts). @default the first of `names`
   */
  serviceNames?(settings: S): readonly string[];
  /** Entries that must be enabled with it: a config error at the path otherwise. @default none */
  requires?(settings: S): readonly Requirement[];
  /** Other checks against the environment, run when the entry is enabled. @default none */
  check?(settings: S, env: EnvironmentView): readonly ConfigIssue[];
  /**
   * Its service signs users in for other services' exposures (implements SingleSignOnProvider):
   * with it enabled, exposures may be protected with `sso` and `oidc`. @default false
   */
  readonly providesSingleSignOn?: boolean;
  /** Subdomains its settings route. @default none */
  subdomains?(settings: S): readonly SubdomainClaim[];
  /** Scrape targets of its upstream sources, by monitor name. @default none */
  readonly upstreamTargets?: Readonly<Record<string, UpstreamTarget>>;
  /**
   * Built once every other service exists and the exposures are routed: it looks at the
   * finished platform (the end-to-end verification). @default false
   */
  readonly final?: boolean;
  /** Creates its services in the platform; what it returns is what `required`/`optional` hand out. */
  build(platform: Platform, settings: S, context: BuildContext): B;
}

/** Declares an entry, inferring its settings type from the schema. */
export function defineService<S, B>(entry: ServiceEntry<S, B>): ServiceEntry<S, B> {
  return entry;
}

/** The entries of a platform, in the order their services are created (and replayed by the verification). */
export interface Catalog {
  readonly entries: readonly ServiceEntry<any, any>[];
}

/**
 * The folder (and platform Application) of the Namespaces of the operator's apps, which the apps'
 * own project may not create (docs/adr/0022).
 */
export const APP_NAMESPACES = 'app-namespaces';

/** Folders of k8s/<env>/ that are no service's. */
export const OUTPUT_FOLDERS = ['apps', 'bootstrap', APP_NAMESPACES] as const;

/** Names no service may take: the output folders, and the owner of the backup target's keys in the secret backend. */
export const RESERVED_NAMES: readonly string[] = [...OUTPUT_FOLDERS, BACKUP_CREDENTIALS.service];

/** A catalog of entries in creation order; two entries cannot read one key or take one name. */
export function defineCatalog(entries: readonly ServiceEntry<any, any>[]): Catalog {
  const keys = new Map<string, string>();
  const names = new Map<string, string>();
  for (const entry of entries) {
    if (entry.settings) {
      const key = settingsPath(entry).join('.');
      if (keys.has(key)) throw new Error(`catalog: ${entry.name} and ${keys.get(key)} both read ${key}`);
      keys.set(key, entry.name);
    }
    for (const name of entry.names) {
      const reserved = (OUTPUT_FOLDERS as readonly string[]).includes(name) ? 'an output folder' : RESERVED_NAMES.includes(name) ? "the backup target's keys" : undefined;
      const owner = names.get(name) ?? reserved;
      if (owner) throw new Error(`catalog: ${entry.name} takes the name "${name}", which ${owner} takes`);
      names.set(name, entry.name);
    }
  }
  return { entries };
}

/** The subdomain of an entry whose settings have one at `subdomain`, its usual place. */
export function ownSubdomain<S extends { readonly subdomain: string }>(settings: S): SubdomainClaim[] {
  return [{ path: ['subdomain'], subdomain: settings.subdomain }];
}

/** Every entry's upstream scrape targets, by monitor name. */
export function upstreamTargetsOf(catalog: Catalog): Readonly<Record<string, UpstreamTarget>> {
  return Object.fromEntries(catalog.entries.flatMap((entry) => Object.entries(entry.upstreamTargets ?? {})));
}

/** The path of an entry's settings from the environment's root. */
export function settingsPath(entry: ServiceEntry<any, any>): string[] {
  if (!entry.settings) throw new Error(`${entry.name} has no settings`);
  return entry.settings.topLevel ? [entry.settings.key] : ['services', entry.settings.key];
}

/** An entry's settings in a merged environment config (the schema has filled every default). */
export function settingsIn<S>(config: { readonly services: Readonly<Record<string, unknown>> }, entry: ServiceEntry<S, any>): S {
  if (!entry.settings) throw new Error(`${entry.name} has no settings`);
  const source = entry.settings.topLevel ? (config as unknown as Record<string, unknown>) : config.services;
  return source[entry.settings.key] as S;
}

/**
 * Builds the entries of one stage in catalog order: the services of the environment, or the
 * `final` ones once every other service exists and the exposures are routed.
 */
export function buildServices(platform: Platform, stage: 'services' | 'final'): void {
  const built = platform._builtEntries;
  const entries = platform.catalog.entries.filter((entry) => (entry.final ?? false) === (stage === 'final'));
  const pending = new Set(entries);
  for (const entry of entries) {
    pending.delete(entry);
    if (!platform.isEnabled(entry)) continue;
    const lookup = (wanted: ServiceEntry<any, any>, required: boolean): any => {
      if (built.has(wanted)) return built.get(wanted);
      if (pending.has(wanted) || (stage === 'services' && wanted.final)) {
        throw new Error(`catalog order: ${wanted.name} must come before ${entry.name}, which uses it`);
      }
      if (required) throw new Error(`${entry.name} requires ${wanted.name}, which is disabled: its requirements must say so`);
      return undefined;
    };
    const context: BuildContext = {
      required: (wanted) => lookup(wanted, true),
      optional: (wanted) => lookup(wanted, false),
      services: platform.services,
    };
    const settings = entry.settings ? settingsIn(platform.config, entry) : undefined;
    const before = platform.services.length;
    built.set(entry, entry.build(platform, settings, context));
    checkNamesBuilt(entry, settings, platform.services.slice(before));
  }
}

/**
 * What the config checks know of an entry's services before they exist must match what it built:
 * a service whose name the entry does not take could collide with an app of that name (one
 * folder, one construct id), and a name apps may depend on that no service has could not be
 * wired. A bug in the catalog, not in the config.
 */
function checkNamesBuilt(entry: ServiceEntry<any, any>, settings: unknown, services: readonly HomelabService[]): void {
  const builtNames = new Set(services.map((service) => service.serviceName));
  const offered = serviceNamesOf(entry, settings);
  const untaken = [...builtNames].filter((name) => !entry.names.includes(name) && !offered.includes(name));
  const unbuilt = offered.filter((name) => !builtNames.has(name));
  if (untaken.length > 0) throw new Error(`catalog: ${entry.name} built ${untaken.join(', ')}, which its names do not take`);
  if (unbuilt.length > 0) throw new Error(`catalog: ${entry.name} offers ${unbuilt.join(', ')} to depend on, which it did not build`);
}

/** The services an enabled entry offers to depend on (an app's `dependsOn`). */
export function serviceNamesOf(entry: ServiceEntry<any, any>, settings: unknown): readonly string[] {
  return entry.serviceNames ? entry.serviceNames(settings) : entry.names.slice(0, 1);
}
