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

/**
 * Sorts strings in place, as `sort()` without a comparator does (by code units), without its
 * allocations for the few items most calls have: `sort()` sets up its merge state on every call,
 * which for the keys of every object a synth renders (lib/output/fast-resolve.ts) was a seventh
 * of all it allocated. Insertion sort up to 16 items, `sort()` beyond.
 */
export function sortByCodeUnits(items: string[]): void {
  if (items.length > 16) {
    items.sort();
    return;
  }
  for (let i = 1; i < items.length; i++) {
    const item = items[i];
    let j = i - 1;
    while (j >= 0 && items[j] > item) {
      items[j + 1] = items[j];
      j -= 1;
    }
    items[j + 1] = item;
  }
}
