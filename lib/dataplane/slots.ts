/**
 * The `max_requests` circuit breaker of Envoy clusters as one proxy replica counts it: slots in use per cluster, for
 * the router's requests per route rule cluster and the ext_proc filter's gRPC streams per policy cluster.
 */
export class ClusterSlots {
  private readonly used = new Map<string, number>();

  /**
   * Takes a slot of `cluster`; returns its release, or undefined when `limit` slots are taken. The release is
   * idempotent: a caller may call it from every path that ends the request, and the slot comes back exactly once.
   */
  acquire(cluster: string, limit: number): (() => void) | undefined {
    const used = this.used.get(cluster) ?? 0;
    if (used >= limit) return undefined;
    this.used.set(cluster, used + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.used.get(cluster) ?? 1) - 1;
      if (left === 0) this.used.delete(cluster);
      else this.used.set(cluster, left);
    };
  }

  /** Slots of `cluster` in use now. */
  inUse(cluster: string): number {
    return this.used.get(cluster) ?? 0;
  }
}
