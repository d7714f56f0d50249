/**
 * The initial value of a numeric field that will hold unsigned 32-bit
 * halves of doublewords (radix entries, real addresses): -0, which equals 0
 * in every computation here but is not a small integer, so V8 gives the
 * field a double representation from the start. Started at 0, such a field
 * turns from small-integer to double when the first value at or above 2^31
 * arrives (a PTE's V bit, say); the object's map changes then, and every
 * function optimised against the old one deoptimises — which left the
 * nested fault path running at a third of its speed in some processes
 * (ppc.radix.nested.l2FirstTouch 7–9 raw walks instead of 4–5).
 */
export const UINT32_FIELD = -0;
