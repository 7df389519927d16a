// What both sources share: the typed event surface of `Source` and read access to the store.
import { EventEmitter } from 'node:events';
import { ClusterStore, type Sameness } from './store.js';
import type { ChangeKind, Problem, V1EndpointSlice, V1Node, V1Service } from './types.js';

export abstract class BaseSource extends EventEmitter {
  protected readonly store: ClusterStore;
  protected isSynced = false;

  constructor(nodeName: string, sameness: Sameness) {
    super();
    this.store = new ClusterStore(nodeName, (kind, key) => this.emit('change', kind, key), sameness);
  }

  get synced(): boolean {
    return this.isSynced;
  }

  services(): V1Service[] {
    return this.store.services();
  }
  service(key: string): V1Service | undefined {
    return this.store.service(key);
  }
  slices(serviceKey: string): V1EndpointSlice[] {
    return this.store.slices(serviceKey);
  }
  node(): V1Node | undefined {
    return this.store.node();
  }

  override on(ev: 'change', fn: (kind: ChangeKind, key: string) => void): this;
  override on(ev: 'problem', fn: (p: Problem) => void): this;
  override on(ev: 'connection', fn: (state: 'up' | 'down', detail?: string) => void): this;
  override on(ev: string, fn: (...args: any[]) => void): this {
    return super.on(ev, fn);
  }

  protected problem(p: Problem): void {
    this.emit('problem', p);
  }
}
