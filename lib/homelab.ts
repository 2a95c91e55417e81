/**
 * The catalog: which construct each enabled service of an environment becomes, and how
 * they reference each other. References are typed: a consumer gets the construct it
 * needs, and that reference is its dependency.
 */
import { Construct } from 'constructs';
import { ArgoCd } from '../charts/argocd';
import { CustomApp } from '../charts/custom-app';
import { Longhorn } from '../charts/longhorn';
import type { EnvironmentConfig } from './config/schema';
import { UserError } from './errors';
import { Layer } from './layers';
import { Platform } from './platform';
import type { HomelabService } from './service';
import { findCycle } from './waves';

export function buildPlatform(scope: Construct, environment: string, config: EnvironmentConfig): Platform {
  const platform = new Platform(scope, environment, config);
  const { services } = config;

  const argocd = new ArgoCd(platform, services.argocd);
  const longhorn = services.longhorn.enabled ? new Longhorn(platform, services.longhorn) : undefined;

  const built = new Map<string, HomelabService>([['argocd', argocd]]);
  if (longhorn) built.set('longhorn', longhorn);

  // Apps may depend on each other: create them dependencies first (the config check has
  // rejected unknown names; a cycle leaves some unbuilt and is reported by name).
  const pending = new Map(Object.entries(config.apps).filter(([, app]) => app.enabled));
  while (pending.size > 0) {
    const ready = [...pending].filter(([, app]) => app.dependsOn.every((dep) => built.has(dep)));
    if (ready.length === 0) break;
    for (const [name, app] of ready) {
      built.set(
        name,
        new CustomApp(platform, name, {
          ...app,
          layer: app.layer as Layer,
          storage: app.volume ? longhorn : undefined,
          dependsOn: app.dependsOn.map((dep) => built.get(dep)!),
        }),
      );
      pending.delete(name);
    }
  }
  if (pending.size > 0) throw appCycle(config, [...pending.keys()]);
  return platform;
}

function appCycle(config: EnvironmentConfig, unbuilt: string[]): UserError {
  const nodes = unbuilt.map((name) => ({ name, layer: Layer.AUTOMATION, dependsOn: config.apps[name].dependsOn.filter((d) => unbuilt.includes(d)) }));
  const cycle = findCycle(nodes) ?? unbuilt;
  return new UserError([`apps: dependency cycle: ${cycle.join(' -> ')}`]);
}
