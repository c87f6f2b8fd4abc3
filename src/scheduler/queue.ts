// Admission queue with fairness across tenants: one FIFO per tenant, served round-robin, bounded per tenant and
// in total, and a per-tenant cap on jobs in flight (admitted and not yet finished) so one busy tenant cannot fill
// every sequence while others wait.

export interface FairQueueLimits {
  maxQueue: number;
  perTenantQueue: number;
  perTenantInFlight: number;
}

export class FairQueue<T> {
  private readonly byTenant = new Map<string, T[]>();
  private readonly order: string[] = []; // tenants with queued items, in round-robin order
  private cursor = 0; // index in `order` of the tenant served next
  private count = 0;
  private readonly inFlight = new Map<string, number>();

  constructor(
    private readonly limits: FairQueueLimits,
    private readonly tenantOf: (item: T) => string,
  ) {}

  get size(): number {
    return this.count;
  }

  /** Appends an item; false when the global queue or the tenant's own queue is full. */
  push(item: T): boolean {
    const tenant = this.tenantOf(item);
    const list = this.byTenant.get(tenant);
    if (this.count >= this.limits.maxQueue || (list?.length ?? 0) >= this.limits.perTenantQueue) return false;
    this.listFor(tenant).push(item);
    this.count++;
    return true;
  }

  /** Puts a taken item back at the head of its tenant's queue (it could not start after all); ends its flight. */
  putBack(item: T): void {
    const tenant = this.tenantOf(item);
    this.done(tenant);
    this.listFor(tenant).unshift(item);
    this.count++;
  }

  /** Takes the head of the next tenant (round-robin) that is under its in-flight cap and whose head `accept`s. */
  take(accept: (item: T) => boolean): T | undefined {
    for (let i = 0; i < this.order.length; i++) {
      const at = (this.cursor + i) % this.order.length;
      const tenant = this.order[at];
      const list = this.byTenant.get(tenant)!;
      if ((this.inFlight.get(tenant) ?? 0) >= this.limits.perTenantInFlight || !accept(list[0])) continue;
      const item = list.shift()!;
      this.count--;
      this.inFlight.set(tenant, (this.inFlight.get(tenant) ?? 0) + 1);
      if (list.length === 0) {
        this.dropTenant(at);
        this.cursor = this.order.length === 0 ? 0 : at % this.order.length;
      } else {
        this.cursor = (at + 1) % this.order.length;
      }
      return item;
    }
    return undefined;
  }

  /** A taken item finished (or failed): its tenant may admit another. */
  done(tenant: string): void {
    const n = (this.inFlight.get(tenant) ?? 0) - 1;
    if (n > 0) this.inFlight.set(tenant, n);
    else this.inFlight.delete(tenant);
  }

  /** Removes and returns every queued item that matches. */
  removeWhere(match: (item: T) => boolean): T[] {
    const removed: T[] = [];
    for (let at = this.order.length - 1; at >= 0; at--) {
      const list = this.byTenant.get(this.order[at])!;
      const keep = list.filter((item) => !match(item));
      if (keep.length === list.length) continue;
      removed.push(...list.filter(match));
      this.count -= list.length - keep.length;
      if (keep.length > 0) {
        this.byTenant.set(this.order[at], keep);
      } else {
        this.dropTenant(at);
        if (this.cursor > at) this.cursor--;
        if (this.cursor >= this.order.length) this.cursor = 0;
      }
    }
    return removed;
  }

  /** The head of every tenant's queue (what take() chooses among), in no particular order. */
  heads(): T[] {
    return [...this.byTenant.values()].map((list) => list[0]);
  }

  some(match: (item: T) => boolean): boolean {
    for (const list of this.byTenant.values()) if (list.some(match)) return true;
    return false;
  }

  private listFor(tenant: string): T[] {
    let list = this.byTenant.get(tenant);
    if (!list) {
      list = [];
      this.byTenant.set(tenant, list);
      this.order.push(tenant);
    }
    return list;
  }

  private dropTenant(at: number): void {
    this.byTenant.delete(this.order[at]);
    this.order.splice(at, 1);
  }
}
