/**
 * Strings in the order of their UTF-16 code units, as `Array.prototype.sort()` orders them by
 * default: the same in every locale, and without ICU (`localeCompare(b, 'en')` loaded ICU's
 * collation data, ~6 ms of every synth process and thread). For lowercase letters, digits, `-`,
 * `.` and `/` — Kubernetes and DNS names, paths of them — it is the order
 * `localeCompare(b, 'en')` gave; capitals and `_` (possible in a taint key) sort differently.
 */
export function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
