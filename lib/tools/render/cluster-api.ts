/**
 * What a Kubernetes cluster of the project's version serves before any CRD, from the imported
 * OpenAPI definitions (imports/schemas): the API versions helm is told about
 * (`--api-versions`, as Argo CD passes the cluster's) and the kinds that are cluster-scoped.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readClusterScopedKinds } from '../../output/cluster-scoped';
import { KUBERNETES_SCHEMA_FILE, SCHEMA_DIR, SchemaIndex } from '../validate/manifest-validator';

export function builtInApi(): { apiVersions: string[]; clusterScoped: ReadonlySet<string> } {
  const index = JSON.parse(readFileSync(join(SCHEMA_DIR, 'index.json'), 'utf8')) as SchemaIndex;
  const apiVersions = Object.entries(index.kinds).flatMap(([apiVersion, kinds]) => {
    const builtIn = Object.entries(kinds)
      .filter(([, ref]) => ref.startsWith(KUBERNETES_SCHEMA_FILE))
      .map(([kind]) => `${apiVersion}/${kind}`);
    return builtIn.length > 0 ? [apiVersion, ...builtIn] : [];
  });
  return { apiVersions: apiVersions.sort(), clusterScoped: readClusterScopedKinds(SCHEMA_DIR) };
}
