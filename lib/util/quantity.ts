/** Kubernetes resource quantities as numbers, for capacity arithmetic. */

const SUFFIX: Record<string, number> = {
  '': 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** `500m` -> 0.5, `2` -> 2, `4Gi` -> 4294967296. Throws on what is not a quantity. */
export function parseQuantity(quantity: string | number): number {
  if (typeof quantity === 'number') return quantity;
  const match = /^(\d+(?:\.\d+)?)([a-zA-Z]*)$/.exec(quantity);
  if (!match || !(match[2] in SUFFIX)) throw new Error(`not a quantity: ${quantity}`);
  return Number(match[1]) * SUFFIX[match[2]];
}

/**
 * Cores of CPU quantities added up: `['100m', '200m', '0.3']` -> 0.6 exactly where the float sum
 * would be 0.6000000000000001. Summed in whole millicores, each rounded up as Kubernetes counts
 * it (resource.Quantity's MilliValue, ceil(q * 1000)), so that two sums of the same amount compare
 * equal and `0.0004` counts as 1m.
 */
export function sumCores(quantities: Iterable<{ readonly quantity: string | number; readonly times?: number }>): number {
  let milli = 0;
  // To the microcore first: 1.1 * 1000 is 1100.0000000000002 in floating point, not 1101 millicores.
  for (const { quantity, times = 1 } of quantities) milli += Math.ceil(Math.round(parseQuantity(quantity) * 1e6) / 1e3) * times;
  return milli / 1000;
}

const DURATION_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** Seconds in a duration such as `5m`, `1h30m` or `7d` (Go units plus the d and w Prometheus and Loki take). */
export function durationSeconds(duration: string): number {
  let total = 0;
  for (const [, amount, unit] of duration.matchAll(/(\d+)(ms|s|m|h|d|w)/g)) total += Number(amount) * DURATION_SECONDS[unit];
  return Math.round(total * 1000) / 1000;
}

/** Cores with up to three decimals: `2.25`. */
export function formatCores(cores: number): string {
  return String(Math.round(cores * 1000) / 1000);
}

/** Bytes in GiB with one decimal: `3.5Gi`. */
export function formatGibibytes(bytes: number): string {
  return `${(Math.round((bytes / 2 ** 30) * 10) / 10).toFixed(1)}Gi`;
}
