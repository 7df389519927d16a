// Node-level datapath state, beside the Service state the Reconciler writes: the config entry,
// node_addrs, pod_ifs, if_macs and snat_skip. The agent finds the node's addresses,
// interfaces and used ports; this writes them, each map brought to exactly what is given.
import type { BpfObject } from './bpf.js';
import * as C from './codecs.js';
import { child } from '../log.js';

interface PortRange { min: number; max: number }

/** What the agent's options and the kernel decide about the config entry; the node gives the rest. */
export interface NodeSettings {
  /** --local-delivery peer */
  peerDelivery: boolean;
  /** new flows netfilter conntrack tracks are left to it (the kernel has the lookup) */
  nfct: boolean;
  nodePortRange: PortRange;
  snatPortRange: PortRange;
  maglevM: number;
  conntrackSize: number;
  /** per CPU, 0 = off */
  flowCacheSize: number;
  cpus: number;
  sock: Pick<C.XlbConfig, 'sockFlags' | 'netnsCookie'>;
}

/** --snat-port-range, the ports of it the node uses (left out), ports held by live flows. */
export interface SnatPorts { first: number; last: number; skipped: number; used: number }

export class NodeDatapath {
  /** the config entry as last written */
  cfg: C.XlbConfig = { ...C.DEFAULT_CONFIG };
  /** the node addresses (node_addrs) and SNAT addresses of both families as last written */
  addresses: { addrs: string[]; snat: string[] } = { addrs: [], snat: [] };
  /** the SNAT port view: `used` is the conntrack sweep's */
  snatPorts: SnatPorts = { first: 0, last: 0, skipped: 0, used: 0 };
  private snatSkip: BigUint64Array = new BigUint64Array(C.SNAT_SKIP_WORDS);
  private readonly log = child('node');
  /** switched off: new flows go to the stack, xlb's own flows are still translated */
  private draining = false;
  private carryUntil = 0;
  private written = false;

  constructor(private readonly obj: Pick<BpfObject, 'map'>, private readonly s: NodeSettings) {}

  /** node_addrs (the node's and its devices' addresses, their subnet broadcasts), then the
   *  config entry with the SNAT addresses (snatAddr6: the node's IPv6 one, if it has one). */
  write(node: { addrs: string[]; broadcasts: string[]; snatAddr: string | null; snatAddr6?: string | null }): void {
    this.writeNodeAddrs(node.addrs, node.broadcasts);
    this.addresses = { addrs: [...node.addrs], snat: [node.snatAddr, node.snatAddr6].filter((a) => a) as string[] };
    const s = this.s;
    this.cfg = {
      ...C.DEFAULT_CONFIG,
      flags: this.flags(),
      nodePortMin: s.nodePortRange.min, nodePortMax: s.nodePortRange.max,
      maglevM: s.maglevM,
      ctLimit: C.ctFlowLimit(s.conntrackSize, s.cpus),
      snatAddr: node.snatAddr,
      snatAddr6: node.snatAddr6 ?? null,
      snatPortMin: s.snatPortRange.min, snatPortMax: s.snatPortRange.max,
      // A new generation with every config write: nothing cached under another config is used.
      flowCacheGen: this.cacheGen(),
      flowCacheMask: Math.max(1, s.flowCacheSize) - 1,
      carryUntil: this.carryUntil,
      ...s.sock,
    };
    this.obj.map(C.MAP.config).update(C.encodeConfigKey(), C.encodeConfig(this.cfg));
    if (!node.snatAddr) this.log.warn('no node IPv4 address found: remote backends of external IPv4 traffic cannot be SNATed');
    if (node.snatAddr6 === null) this.log.info('no node IPv6 address: IPv6 NodePorts answer on none, remote backends of external IPv6 traffic cannot be SNATed');
    this.written = true;
  }

  /**
   * carry_until: CLOCK_MONOTONIC seconds until which a TCP packet that misses conntrack, and may
   * belong to a flow the replaced ct's programs made, is held instead of translated anew or
   * passed (flow_carry_held in bpf/include/flow.h); 0 ends the hold. Set across a start's link
   * switch when the ct map was migrated (agent/pinmigrate.ts).
   */
  setCarry(untilS: number): void {
    this.carryUntil = untilS;
    this.rewrite({ carryUntil: untilS });
  }

  /** The config entry as last written with `change`; before the first write() nothing: it
   *  brings the flags and carry_until with the node's state. */
  private rewrite(change: Partial<C.XlbConfig>): void {
    if (!this.written) return;
    this.cfg = { ...this.cfg, ...change };
    this.obj.map(C.MAP.config).update(C.encodeConfigKey(), C.encodeConfig(this.cfg));
  }

  /** Drain on or off: the config entry as last written with only that flag changed. */
  setDrain(on: boolean): void {
    this.draining = on;
    this.rewrite({ flags: this.flags(), flowCacheGen: this.cacheGen() });
  }

  /** A new generation with every config write; 0 (off) while draining, so every packet of a
   *  flow xlb still translates meets the conntrack path, where nfct.h asks netfilter first. */
  private cacheGen(): number {
    return this.s.flowCacheSize && !this.draining ? C.nextFlowCacheGen(this.cfg.flowCacheGen) : 0;
  }

  private flags(): number {
    const F = C.CONFIG_FLAG;
    return C.DEFAULT_CONFIG.flags | (this.s.peerDelivery ? F.peer : 0) | (this.s.nfct ? F.nfct : 0) | (this.draining ? F.drain : 0);
  }

  /** Node addresses (NodePort), and broadcast addresses, flagged: the datapath never starts a
   *  flow from one (flow_src_ok in bpf/include/flow.h). */
  private writeNodeAddrs(addrs: string[], broadcasts: string[]): void {
    const m = this.obj.map(C.MAP.nodeAddrs);
    const want = new Set([...addrs, ...broadcasts]);
    for (const a of addrs) m.update(C.encodeNodeAddrKey(a), C.encodeNodeAddrValue());
    for (const b of broadcasts) m.update(C.encodeNodeAddrKey(b), C.encodeNodeAddrValue(C.NODE_ADDR_FLAG.broadcast));
    for (const k of m.keys()) if (!want.has(C.decodeNodeAddrKey(k))) m.delete(k);
  }

  /** pod_ifs: the pod interfaces by ifindex; veths are marked as peer-redirect targets. */
  writePodIfs(pods: Array<{ ifindex: number; kind: string }>): void {
    const m = this.obj.map(C.MAP.podIfs);
    const want = new Set<number>();
    for (const l of pods) {
      want.add(l.ifindex);
      m.update(C.encodePodIfKey(l.ifindex), C.encodePodIfValue(l.kind === 'veth' ? C.POD_IF_FLAG.peer : 0));
    }
    for (const k of m.keys()) if (!want.has(C.decodePodIfKey(k))) m.delete(k);
  }

  /** if_macs: each attached interface's own MAC, the source MAC of replies sent back out of it. */
  writeIfMacs(links: Array<{ ifindex: number; mac: string | null }>): void {
    const m = this.obj.map(C.MAP.ifMacs);
    const want = new Set<number>();
    for (const l of links) {
      if (!l.mac) continue;
      want.add(l.ifindex);
      m.update(C.encodeIfMacKey(l.ifindex), C.encodeIfMacValue(l.mac));
    }
    for (const k of m.keys()) if (!want.has(C.decodeIfMacKey(k))) m.delete(k);
  }

  /** snat_skip: the ports of the SNAT range the node itself uses; only words that changed are written. */
  writeSnatSkip(skip: ReadonlySet<number>): void {
    const r = this.s.snatPortRange;
    const words = C.snatSkipWords(skip);
    const m = this.obj.map(C.MAP.snatSkip);
    for (let i = 0; i < words.length; i++) {
      if (words[i] !== this.snatSkip[i]) m.update(C.encodeSnatSkipKey(i), C.encodeSnatSkipValue(words[i]));
    }
    this.snatSkip = words;
    const free = r.max - r.min + 1 - skip.size;
    if (free < 1024 && this.snatPorts.skipped !== skip.size) {
      this.log.warn({ range: `${r.min}-${r.max}`, free }, 'few SNAT ports left after the ports the node uses: widen --snat-port-range');
    }
    this.snatPorts = { ...this.snatPorts, first: r.min, last: r.max, skipped: skip.size };
  }
}
