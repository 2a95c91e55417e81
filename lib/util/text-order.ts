/**
 * Strings in the order of their UTF-16 code units, as `Array.prototype.sort()` orders them by
 * default: the same in every locale, and without ICU (`localeCompare(b, 'en')` loaded ICU's
 * collation data, ~7 ms of every synth process and thread). For what synth sorts — Kubernetes
 * and DNS names, paths of them — it is the order `localeCompare(b, 'en')` gave: both put `-`
 * before `.`, `/`, digits and lowercase letters.
 */
export function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
