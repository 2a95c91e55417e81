/** Settings of the networking layer's services (the Cloudflare token is the Secret charts/cert-manager.ts declares). */
import { z } from 'zod';
import { bool } from '../primitives';

export const certManagerSchema = z.strictObject({
  enabled: bool.default(false),
  /** Contact for the Let's Encrypt account (expiry notices). */
  email: z.email({ error: 'expected an e-mail address' }).optional(),
}).superRefine((certManager, ctx) => {
  if (!certManager.enabled) return;
  if (!certManager.email) ctx.addIssue({ code: 'custom', path: ['email'], message: "expected an e-mail address for the Let's Encrypt account" });
});

export type CertManagerConfig = z.output<typeof certManagerSchema>;
