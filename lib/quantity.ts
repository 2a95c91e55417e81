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

/** Cores with up to three decimals: `2.25`. */
export function formatCores(cores: number): string {
  return String(Math.round(cores * 1000) / 1000);
}

/** Bytes in GiB with one decimal: `3.5Gi`. */
export function formatGibibytes(bytes: number): string {
  return `${(Math.round((bytes / 2 ** 30) * 10) / 10).toFixed(1)}Gi`;
}
