/**
 * `services.networkPolicies` in homelab.yaml: NetworkPolicies derived from the service graph
 * (lib/network-policies.ts) and the service whose checkpoint proves they are enforced.
 */
import { z } from 'zod';
import { bool, ipv4Cidr } from '../../lib/model/config/primitives';

export const networkPoliciesSchema = z.strictObject({
  enabled: bool.default(true),
  /**
   * Where the API server's calls to admission and conversion webhooks come from. k3s runs the
   * API server in its own process on the server nodes' host network, so the calls come from
   * those nodes' addresses, which the config does not know: narrow this to them (`/32` each).
   */
  apiServerSources: z.array(ipv4Cidr).min(1, { error: 'expected at least one CIDR block' }).default(['0.0.0.0/0']),
});

export type NetworkPoliciesConfig = z.output<typeof networkPoliciesSchema>;
