// A bitmask hyper-parameter (HyperParameter.bits) as checkboxes: bit i (value 2^i) is the i-th name. The
// config keeps the number; these read and flip its bits. Pure: unit tests import it under node.

/** Whether bit `i` is set in `mask` (a non-number or a negative mask has none). */
export function hasBit(mask: unknown, i: number): boolean {
  return typeof mask === 'number' && Number.isInteger(mask) && mask >= 0 && (mask & (1 << i)) !== 0;
}

/** `mask` with bit `i` set or cleared; a mask that is not a whole number starts from 0. */
export function withBit(mask: unknown, i: number, on: boolean): number {
  const base = typeof mask === 'number' && Number.isInteger(mask) && mask >= 0 ? mask : 0;
  return on ? base | (1 << i) : base & ~(1 << i);
}

/** The names of the bits set, in bit order (e.g. 5 over q, k, v, … → "q, v"); bits beyond the names are ignored. */
export function bitNames(mask: unknown, names: readonly string[]): string[] {
  return names.filter((_, i) => hasBit(mask, i));
}
