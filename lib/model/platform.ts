/**
 * One environment's homelab: the scope every service of that environment is created in.
 * Services are created in it and read their environment's settings from it.
 */
import { Construct } from 'constructs';
import type { EnvironmentConfig } from './config/environment';
import type { HomelabService } from './service';

export class Platform extends Construct {
  private readonly registered: HomelabService[] = [];
  private readonly lastSteps: (() => void)[] = [];

  constructor(
    scope: Construct,
    readonly environment: string,
    readonly config: EnvironmentConfig,
  ) {
    super(scope, environment);
  }

  /** Public hostname of a subdomain in this environment, e.g. `argocd.dev.home.example.net`. */
  hostname(subdomain: string): string {
    return `${subdomain}.${this.config.domain}`;
  }

  /** @internal called by the HomelabService constructor. */
  register(service: HomelabService): void {
    if (this.registered.some((s) => s.serviceName === service.serviceName)) {
      throw new Error(`two services named "${service.serviceName}" in ${this.environment}`);
    }
    this.registered.push(service);
  }

  /**
   * Work that needs every service complete, including the routes synth adds across services
   * (and the router's checkpoint): e.g. the end-to-end verification replaying every
   * checkpoint. Runs in registration order.
   */
  whenComplete(step: () => void): void {
    this.lastSteps.push(step);
  }

  /** @internal called by synth once the cross-service emission is done. */
  _complete(): void {
    for (const step of this.lastSteps.splice(0)) step();
  }

  /** Services in the order they were created. */
  get services(): readonly HomelabService[] {
    return this.registered;
  }
}
