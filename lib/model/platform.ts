/**
 * One environment's homelab: the scope every service of that environment is created in.
 * Services are created in it (by the catalog's entries) and read their environment's
 * platform settings (domain, nodes) from it.
 */
import { Construct } from 'constructs';
import { BackupTarget } from './backup';
import type { Catalog, ServiceEntry } from './catalog';
import { EnvironmentConfig, isEntryEnabled } from './config/environment';
import type { HomelabService } from './service';

export class Platform extends Construct {
  /** @internal what each entry built, for the entries built after it (lib/model/catalog.ts). */
  readonly _builtEntries = new Map<ServiceEntry<any, any>, unknown>();
  private readonly registered: HomelabService[] = [];
  /** The environment's one off-site backup target (`backup`), if it has one. */
  readonly backupTarget?: BackupTarget;

  constructor(
    scope: Construct,
    readonly environment: string,
    readonly config: EnvironmentConfig,
    readonly catalog: Catalog,
  ) {
    super(scope, environment);
    if (config.backup) this.backupTarget = new BackupTarget(config.backup);
  }

  /** Public hostname of a subdomain in this environment, e.g. `argocd.dev.home.example.net`. */
  hostname(subdomain: string): string {
    return `${subdomain}.${this.config.domain}`;
  }

  /** Whether the environment gets an entry's services. */
  isEnabled(entry: ServiceEntry<any, any>): boolean {
    return isEntryEnabled(this.catalog, this.config, entry);
  }

  /** @internal called by the HomelabService constructor. */
  register(service: HomelabService): void {
    if (this.registered.some((s) => s.serviceName === service.serviceName)) {
      throw new Error(`two services named "${service.serviceName}" in ${this.environment}`);
    }
    this.registered.push(service);
  }

  /** Services in the order they were created. */
  get services(): readonly HomelabService[] {
    return this.registered;
  }
}
