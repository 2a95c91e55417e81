/**
 * The object-storage pass: hands the object store every bucket the services declared
 * (HomelabService.needBuckets), so that it creates them and gives each consumer's identity its
 * own buckets only. Before the secret-delivery pass, which delivers the identities the store
 * composes from the consumers' generated keys. A bucket taken twice is a config error where
 * both consumers' settings come from the config, and a bug otherwise.
 */
import { isObjectStore } from '../model/object-storage';
import type { Platform } from '../model/platform';
import { UserError } from '../util/errors';

export function provisionBuckets(platform: Platform): void {
  const buckets = platform.services.flatMap((service) => service.bucketNeeds);
  const store = platform.services.find(isObjectStore);
  if (!store) {
    if (buckets.length > 0) throw new Error(`${buckets[0].service} declares buckets, but the platform has no object store`);
    return;
  }
  const owners = new Map<string, string>(store.reservedBuckets.map((name) => [name, `${store.serviceName} (its checkpoint's)`]));
  const problems: string[] = [];
  for (const bucket of buckets) {
    const owner = owners.get(bucket.name);
    if (owner) {
      const problem = `bucket ${bucket.name} is taken by ${owner === bucket.service ? `${owner} already` : owner}: expected a bucket of ${bucket.service}'s own`;
      if (bucket.configPath === undefined) throw new Error(problem);
      problems.push(`${bucket.configPath}: ${problem}`);
    }
    owners.set(bucket.name, bucket.service);
  }
  if (problems.length > 0) throw new UserError(problems);
  store.provision(buckets);
}
