/**
 * The catalog: which construct each enabled service of an environment becomes, and how
 * they reference each other. References are typed: a consumer gets the construct it
 * needs, and that reference is its dependency.
 */
import { Construct } from 'constructs';
import { Alloy } from './alloy';
import { ArgoCd } from './argocd';
import { CertManager } from './cert-manager';
import { Cloudflared } from './cloudflared';
import { CustomApp } from './custom-app';
import { ExternalSecrets } from './external-secrets';
import { MonitoringStack } from './kube-prometheus-stack';
import { Loki } from './loki';
import { NetworkPolicyCheck } from './network-policies';
import { Longhorn } from './longhorn';
import { N8n } from './n8n';
import { NvidiaDevicePlugin } from './nvidia-device-plugin';
import { PrometheusOperatorCrds } from './prometheus-operator-crds';
import { Rabbitmq } from './rabbitmq';
import { RabbitmqOperators } from './rabbitmq-operators';
import { KuberayOperator, Ray } from './ray';
import { Traefik } from './traefik';
import { Triton } from './triton';
import { Verification } from './verification';
import { Vault } from './vault';
import type { EnvironmentConfig } from '../lib/model/config/environment';
import { Layer } from '../lib/model/layers';
import { Platform } from '../lib/model/platform';
import type { HomelabService } from '../lib/model/service';

export function buildPlatform(scope: Construct, environment: string, config: EnvironmentConfig): Platform {
  const platform = new Platform(scope, environment, config);
  const { services } = config;

  const argocd = new ArgoCd(platform, services.argocd);
  const longhorn = services.longhorn.enabled ? new Longhorn(platform, services.longhorn) : undefined;

  // Monitors and rules need only the CRDs: first wave, long before the stack itself.
  if (services.monitoring.enabled) new PrometheusOperatorCrds(platform);
  const built = new Map<string, HomelabService>([['argocd', argocd]]);
  if (longhorn) built.set('longhorn', longhorn);
  let rabbitmq: Rabbitmq | undefined;
  if (services.rabbitmq.enabled) {
    // The operators install the rabbitmq.com CRDs; the cluster depends on them through that.
    const operators = new RabbitmqOperators(platform);
    // The config check guarantees Longhorn with RabbitMQ.
    rabbitmq = new Rabbitmq(platform, { ...services.rabbitmq, storage: longhorn!, operators });
    built.set('rabbitmq', rabbitmq);
  }
  const devicePlugin = services.nvidiaDevicePlugin.enabled ? new NvidiaDevicePlugin(platform, services.nvidiaDevicePlugin) : undefined;
  if (devicePlugin) built.set('nvidia-device-plugin', devicePlugin);
  if (services.triton.enabled) {
    // The config check guarantees the device plugin with Triton, and Longhorn for a volume.
    const triton = new Triton(platform, {
      ...services.triton,
      devicePlugin: devicePlugin!,
      // Only a volume repository needs Longhorn: an S3 one must not wait for it.
      storage: services.triton.modelRepository.volume ? longhorn : undefined,
    });
    built.set('triton', triton);
  }
  if (services.ray.enabled) {
    new KuberayOperator(platform);
    built.set('ray', new Ray(platform, { subdomain: services.ray.subdomain, head: services.ray.head, workerGroups: services.ray.workerGroups, devicePlugin }));
  }

  let certManager: CertManager | undefined;
  if (services.certManager.enabled) {
    // The config check guarantees the e-mail.
    certManager = new CertManager(platform, { email: services.certManager.email! });
    built.set('cert-manager', certManager);
  }
  if (services.vault.enabled) {
    // The config check guarantees Longhorn with Vault, and Vault with External Secrets.
    const { replicas, storageSize, storageClass, resources, subdomain } = services.vault;
    const vault = new Vault(platform, { storage: longhorn!, replicas, storageSize, storageClass, resources, subdomain });
    built.set('vault', vault);
    if (services.externalSecrets.enabled) {
      built.set('external-secrets', new ExternalSecrets(platform, { vault, resources: services.externalSecrets.resources }));
    }
  }
  let loki: Loki | undefined;
  if (services.loki.enabled) {
    const { storage, retention, resources } = services.loki;
    // The config check guarantees Longhorn for a volume store; with S3, Longhorn (if enabled) keeps the WAL.
    loki = new Loki(platform, { storage: longhorn, volumeSize: storage.volume?.size, s3: storage.s3, retention, resources });
    built.set('loki', loki);
    if (services.alloy.enabled) built.set('alloy', new Alloy(platform, { loki, resources: services.alloy.resources }));
  }

  let n8n: N8n | undefined;
  if (services.n8n.enabled) {
    const { database, rabbitmq: user, subdomain, timezone, resources } = services.n8n;
    // The config check guarantees Longhorn for SQLite, and an enabled RabbitMQ with a declared user.
    n8n = new N8n(platform, {
      database,
      storage: database.sqlite ? longhorn : undefined,
      rabbitmq: user ? rabbitmq : undefined,
      rabbitmqUser: user ? { name: user.user, vhost: user.vhost } : undefined,
      subdomain,
      timezone,
      resources,
    });
    built.set('n8n', n8n);
  }

  // Apps may depend on each other: create dependencies first (the config check has
  // rejected unknown names and cycles).
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
          gpuProvider: app.gpus > 0 ? devicePlugin : undefined,
          dependsOn: app.dependsOn.map((dep) => built.get(dep)!),
        }),
      );
      pending.delete(name);
    }
  }
  // The config check rejects cycles, so every app is built by now.
  if (pending.size > 0) throw new Error(`apps not built: ${[...pending.keys()].join(', ')}`);
  if (services.networkPolicies.enabled) new NetworkPolicyCheck(platform, argocd);
  // Last: Grafana provisions the dashboards every other service declared.
  // The config check guarantees Longhorn with monitoring.
  const monitoring = services.monitoring.enabled ? new MonitoringStack(platform, { ...services.monitoring, storage: longhorn!, loki }) : undefined;
  if (services.traefik.enabled) {
    // The config check guarantees cert-manager; synth routes every service's exposures through it.
    const t = services.traefik;
    const router = new Traefik(platform, {
      certManager: certManager!,
      issuer: t.issuer,
      adminAccess: t.adminAccess,
      replicas: t.replicas,
      serviceType: t.serviceType,
      loadBalancerIP: t.loadBalancerIP,
      nodePorts: t.nodePorts,
      dashboardSubdomain: t.dashboard.subdomain,
      resources: t.resources,
    });
    const { cloudflared } = services;
    // The config check guarantees the tunnel ID.
    if (cloudflared.enabled) new Cloudflared(platform, { router, tunnelId: cloudflared.tunnelId!, replicas: cloudflared.replicas, resources: cloudflared.resources });
  }
  // After everything (Traefik's checkpoint comes with its routes, at synth): runs every
  // checkpoint again, plus checks across services.
  platform.whenComplete(
    () => new Verification(platform, { services: [...platform.services], monitoring, logs: services.alloy.enabled ? loki : undefined, automation: n8n }),
  );
  return platform;
}
