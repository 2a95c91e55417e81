/** Settings of the networking layer's services. */
import { z } from 'zod';
import { bool, k8sName } from '../primitives';

const secretKeyRef = z.strictObject({
  /** Secret in the cert-manager namespace. */
  name: k8sName,
  key: z.string({ error: 'expected a key of the Secret' }).min(1, { error: 'expected a key of the Secret' }),
});

export const certManagerSchema = z.strictObject({
  enabled: bool.default(false),
  /** Contact for the Let's Encrypt account (expiry notices). */
  email: z.email({ error: 'expected an e-mail address' }).optional(),
  /** Cloudflare API token (Zone:DNS:Edit) for DNS-01, by Secret reference. */
  cloudflareApiToken: secretKeyRef.optional(),
}).superRefine((certManager, ctx) => {
  if (!certManager.enabled) return;
  if (!certManager.email) ctx.addIssue({ code: 'custom', path: ['email'], message: "expected an e-mail address for the Let's Encrypt account" });
  if (!certManager.cloudflareApiToken) {
    ctx.addIssue({ code: 'custom', path: ['cloudflareApiToken'], message: 'expected the Secret holding the Cloudflare API token for DNS-01 ({ name, key })' });
  }
});

export type CertManagerConfig = z.output<typeof certManagerSchema>;
