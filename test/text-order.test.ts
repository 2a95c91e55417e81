/**
 * The order synth sorts names in (lib/util/text-order.ts): by code units, without ICU, and for
 * Kubernetes and DNS names and paths of them the order `localeCompare(b, 'en')` gave before.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { byCodeUnits, sortByCodeUnits } from '../lib/util/text-order';

const NAME_CHARACTERS = 'abcdefghijklmnopqrstuvwxyz0123456789-./'.split('');
const name = fc.array(fc.constantFrom(...NAME_CHARACTERS), { maxLength: 12 }).map((characters) => characters.join(''));

describe('byCodeUnits', () => {
  it("orders names of lowercase letters, digits, '-', '.' and '/' as localeCompare(b, 'en') does", () => {
    fc.assert(
      fc.property(name, name, (a, b) => {
        expect(byCodeUnits(a, b)).toBe(Math.sign(a.localeCompare(b, 'en')));
      }),
      { numRuns: 2000 },
    );
  });

  it('is the default order of Array.prototype.sort, in every locale', () => {
    const words = ['b', 'B', 'a_b', 'a-b', 'ab', 'A', 'é', 'e', '10', '9'];
    expect([...words].sort(byCodeUnits)).toEqual([...words].sort());
  });
});

describe('sortByCodeUnits', () => {
  it('sorts in place as sort() does, short lists and long, surrogates and duplicates included', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(name, fc.string({ unit: 'binary', maxLength: 4 })), { maxLength: 40 }), (items) => {
        const sorted = [...items];
        sortByCodeUnits(sorted);
        expect(sorted).toEqual([...items].sort());
      }),
      { numRuns: 500 },
    );
  });
});
