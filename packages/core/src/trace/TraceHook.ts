/** One trace record: a kind and flat scalar fields. Built only when a hook is installed. */
export interface TraceEvent {
  readonly kind: string;
  readonly [field: string]: string | number | boolean;
}

/**
 * Optional observer of MMU events (faults, zaps, memslot changes, hcalls).
 * Bound to `TRACE_HOOK` as `null` when off; emitters test for null before
 * building an event, so tracing off costs one comparison.
 */
export type TraceHook = (event: TraceEvent) => void;
