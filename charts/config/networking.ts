/** Settings of the networking layer's services: cert-manager (its Cloudflare token is the Secret charts/cert-manager.ts declares), Traefik and the optional Cloudflare Tunnel. */
import { z } from 'zod';
import { bool, intBetween, oneOf, resourcesSchema, subdomain } from '../../lib/model/config/primitives';

export const certManagerSchema = z.strictObject({
  enabled: bool.default(false),
  /** Contact for the Let's Encrypt account (expiry notices). */
  email: z.email({ error: 'expected an e-mail address' }).optional(),
}).superRefine((certManager, ctx) => {
  if (!certManager.enabled) return;
  if (!certManager.email) ctx.addIssue({ code: 'custom', path: ['email'], message: "expected an e-mail address for the Let's Encrypt account" });
});

export type CertManagerConfig = z.output<typeof certManagerSchema>;

const cidr = z.cidrv4({ error: 'expected an IPv4 CIDR such as "192.168.1.0/24"' });
const nodePort = intBetween(30000, 32767);

/** k3s' default cluster-cidr: the source address of every pod-to-Traefik connection. */
export const K3S_POD_NETWORK = '10.42.0.0/16';

export const DEFAULT_TRAEFIK_RESOURCES = { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } };

export const traefikSchema = z
  .strictObject({
    enabled: bool.default(false),
    /** Traefik pods; with more than one, spread over the nodes with a PodDisruptionBudget. */
    replicas: intBetween(1, 5).default(1),
    /** `LoadBalancer` (k3s ServiceLB, MetalLB) or `NodePort` (a router forwarding to the nodes). */
    serviceType: oneOf(['LoadBalancer', 'NodePort']).default('LoadBalancer'),
    /** Address MetalLB assigns (annotation metallb.io/loadBalancerIPs); k3s ServiceLB advertises the node addresses instead. @default any */
    loadBalancerIP: z.ipv4({ error: 'expected an IPv4 address' }).optional(),
    /** Fixed node ports for `NodePort`. @default assigned by Kubernetes */
    nodePorts: z.strictObject({ web: nodePort.optional(), websecure: nodePort.optional() }).optional(),
    /** ClusterIssuer of every certificate: try `letsencrypt-staging` first, then switch. */
    issuer: oneOf(['letsencrypt-production', 'letsencrypt-staging']).default('letsencrypt-production'),
    /** Traefik's own dashboard, an admin route. */
    dashboard: z.strictObject({ subdomain: subdomain.default('traefik') }).prefault({}),
    /**
     * Who may reach admin UIs (Argo CD, Grafana, Longhorn ...): client addresses in
     * `allowList` and/or whoever the `forwardAuth` server (Authelia, oauth2-proxy ...) lets in.
     */
    adminAccess: z
      .strictObject({
        allowList: z.array(cidr).default([]),
        forwardAuth: z
          .strictObject({
            /** The auth server's verification URL, e.g. http://authelia.auth.svc/api/authz/forward-auth. */
            address: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }),
            /** Headers of the auth server's answer copied to the request (e.g. Remote-User). @default none */
            authResponseHeaders: z.array(z.string().min(1)).default([]),
          })
          .optional(),
      })
      .prefault({}),
    /** The cluster's pod network (k3s --cluster-cidr): never allow-listed, since in-cluster clients come from it. */
    podNetwork: cidr.default(K3S_POD_NETWORK),
    resources: resourcesSchema.default(DEFAULT_TRAEFIK_RESOURCES),
  })
  .superRefine((traefik, ctx) => {
    if (!traefik.enabled) return;
    const { allowList, forwardAuth } = traefik.adminAccess;
    if (allowList.length === 0 && !forwardAuth) {
      ctx.addIssue({
        code: 'custom',
        path: ['adminAccess'],
        message: 'expected an allowList of client networks (e.g. your LAN, 192.168.1.0/24) and/or a forwardAuth server: admin UIs are never public',
      });
    }
    allowList.forEach((range, i) => {
      if (cidrsOverlap(range, traefik.podNetwork)) {
        ctx.addIssue({
          code: 'custom',
          path: ['adminAccess', 'allowList', i],
          message: `expected a network outside the pod network ${traefik.podNetwork}: every pod (and cloudflared's tunnel traffic) comes from there`,
        });
      }
    });
    if (traefik.serviceType === 'NodePort' && traefik.loadBalancerIP) {
      ctx.addIssue({ code: 'custom', path: ['loadBalancerIP'], message: 'expected no loadBalancerIP with serviceType NodePort' });
    }
    if (traefik.serviceType === 'LoadBalancer' && traefik.nodePorts) {
      ctx.addIssue({ code: 'custom', path: ['nodePorts'], message: 'expected nodePorts only with serviceType NodePort' });
    }
  });

export type TraefikConfig = z.output<typeof traefikSchema>;

export const DEFAULT_CLOUDFLARED_RESOURCES = { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } };

export const cloudflaredSchema = z
  .strictObject({
    enabled: bool.default(false),
    /** UUID of the locally-managed tunnel (`cloudflared tunnel create <name>` prints it). */
    tunnelId: z.uuid({ error: 'expected the tunnel UUID (cloudflared tunnel create prints it)' }).optional(),
    /** Connectors; each keeps its own connections to Cloudflare's edge. */
    replicas: intBetween(1, 5).default(1),
    resources: resourcesSchema.default(DEFAULT_CLOUDFLARED_RESOURCES),
  })
  .superRefine((cloudflared, ctx) => {
    if (cloudflared.enabled && !cloudflared.tunnelId) {
      ctx.addIssue({ code: 'custom', path: ['tunnelId'], message: 'expected the tunnel UUID (cloudflared tunnel create prints it)' });
    }
  });

export type CloudflaredConfig = z.output<typeof cloudflaredSchema>;

/** A subdomain some enabled service's config routes, with its config path. */
export interface SubdomainClaim {
  readonly path: readonly (string | number)[];
  readonly subdomain: string;
}

export interface ConfigIssue {
  readonly path: (string | number)[];
  readonly message: string;
}

/** Checks across the networking services and the subdomains every exposing service claims. */
export function networkingIssues(env: {
  readonly certManagerEnabled: boolean;
  readonly traefik: TraefikConfig;
  readonly cloudflared: CloudflaredConfig;
  readonly subdomains: readonly SubdomainClaim[];
}): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const { traefik, cloudflared } = env;
  if (traefik.enabled && !env.certManagerEnabled) {
    issues.push({
      path: ['services', 'traefik', 'enabled'],
      message: 'expected services.certManager.enabled: every route is served with a publicly signed certificate',
    });
  }
  if (cloudflared.enabled && !traefik.enabled) {
    issues.push({ path: ['services', 'cloudflared', 'enabled'], message: 'expected services.traefik.enabled: the tunnel forwards to Traefik' });
  } else if (cloudflared.enabled && traefik.issuer !== 'letsencrypt-production') {
    issues.push({
      path: ['services', 'cloudflared', 'enabled'],
      message: "expected services.traefik.issuer letsencrypt-production: the tunnel verifies Traefik's certificates, and staging ones are not publicly trusted",
    });
  }
  const firstClaim = new Map<string, SubdomainClaim>();
  for (const claim of env.subdomains) {
    const first = firstClaim.get(claim.subdomain);
    if (first) {
      issues.push({ path: [...claim.path], message: `expected another subdomain: "${claim.subdomain}" is already used by ${first.path.join('.')}` });
    } else {
      firstClaim.set(claim.subdomain, claim);
    }
  }
  return issues;
}

/** Whether two IPv4 CIDRs share an address (one contains the other). */
export function cidrsOverlap(a: string, b: string): boolean {
  const [baseA, bitsA] = parseCidr(a);
  const [baseB, bitsB] = parseCidr(b);
  const bits = Math.min(bitsA, bitsB);
  return network(baseA, bits) === network(baseB, bits);
}

function parseCidr(cidr: string): [number, number] {
  const [address, bits] = cidr.split('/');
  const value = address.split('.').reduce((sum, octet) => sum * 256 + Number(octet), 0);
  return [value, Number(bits)];
}

function network(address: number, bits: number): number {
  return bits === 0 ? 0 : Math.floor(address / 2 ** (32 - bits));
}
