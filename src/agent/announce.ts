// Announcing LoadBalancer addresses on the local network: for each address xlb assigned, this
// node answers ARP or NDP for it (the `announce` map, bpf/include/announce.h) while it holds it,
// and sends a gratuitous ARP or an unsolicited neighbour advertisement when it takes it over.
// Kube mode: a node eligible for the address (src/model/announce.ts) campaigns for its Lease,
// sooner the earlier it comes in the rendezvous order; the holder's map entry expires when the holder would stop leading unless
// renewed, so a node that loses the Lease (or whose agent dies, leaving the programs running)
// stops answering before another may take the Lease. Manifests mode: the first eligible node
// among the directory's Node objects holds it, its entry renewed by a timer.
import * as C from '../datapath/codecs.js';
import type { BpfObject } from '../datapath/bpf.js';
import { sendTakeover } from '../datapath/ndp.js';
import { announceOrder, announceScore, deviceFor, eligibility, servicesByAddress, type DeviceAddr } from '../model/announce.js';
import { ENABLED_LABEL } from '../model/node.js';
import { objectKey, type AnnounceCampaign, type Source } from '../sources/types.js';
import type { Logger } from '../log.js';
import type { LbAddressInfo } from '../api/view.js';

/** ARP answers IPv4 addresses, NDP IPv6 ones. */
const announceFlag = (addr: string): number => (addr.includes(':') ? C.ANNOUNCE_FLAG.ndp : C.ANNOUNCE_FLAG.arp);

/** Manifests mode: entries are renewed this often and last three times as long. */
const MANIFEST_RENEW_MS = 5000;
/** Gratuitous ARPs (or unsolicited NAs) per takeover, this far apart (a neighbour may miss one). */
const GARP_COUNT = 2;
const GARP_GAP_MS = 1000;

export interface AnnounceDeps {
  node: string;
  source: Source;
  obj: Pick<BpfObject, 'map'>;
  /** whether xlb runs on this node */
  enabled: () => boolean;
  /** other nodes without an xlb.io/enabled label (manifests mode) */
  enabledByDefault: boolean;
  /** the node devices xlb is attached to, with their MACs and subnets */
  devices: () => DeviceAddr[];
  /** kube mode: the announce Lease duration */
  leaseDurationMs: number;
  log: Logger;
  /** the takeover news (gratuitous ARP / unsolicited NA; default ndp.ts sendTakeover) */
  sendGarp?: (ifindex: number, mac: string, addr: string) => void;
}

interface Entry {
  state: LbAddressInfo;
  device?: DeviceAddr;
  campaign?: AnnounceCampaign;
  /** CLOCK_MONOTONIC ns the map entry expires at (0: no entry) */
  expires: bigint;
}

export class Announcer {
  private readonly entries = new Map<string, Entry>();
  private running: Promise<void> = Promise.resolve();
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** addresses this node took over since it started */
  takeovers = 0;
  garpErrors = 0;

  constructor(private readonly d: AnnounceDeps) {}

  start(): void {
    this.timer = setInterval(() => this.sync(), this.d.source.announceLease ? this.d.leaseDurationMs : MANIFEST_RENEW_MS);
    this.timer.unref();
    this.sync();
  }

  /** Deletes every entry, then releases every Lease (so no one answers twice). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
    await Promise.all([...this.entries.keys()].map((a) => this.drop(a)));
  }

  list(): LbAddressInfo[] {
    return [...this.entries.values()]
      .map((e) => ({ ...e.state, announcer: e.state.announcing ? this.d.node : e.campaign ? e.campaign.holder : e.state.announcer }))
      .sort((a, b) => (a.addr < b.addr ? -1 : 1));
  }

  /** Re-decides every address (coalesced: one run at a time, one more if asked meanwhile). */
  sync(): void {
    if (this.stopped) return;
    if (this.again) return;
    this.again = true;
    this.running = this.running.then(async () => {
      this.again = false;
      if (this.stopped) return;
      try {
        await this.syncOnce();
      } catch (e) {
        this.d.log.warn({ err: String(e) }, 'announce sync failed');
      }
    });
  }

  private async syncOnce(): Promise<void> {
    const src = this.d.source;
    const byAddr = servicesByAddress(src.services());
    const devices = this.d.devices();
    const me = { name: this.d.node, enabled: this.d.enabled(), node: src.node() };
    for (const [addr, svcs] of byAddr) {
      const withSlices = svcs.map((svc) => ({ svc, slices: src.slices(objectKey(svc.metadata)) }));
      const el = eligibility(me, withSlices);
      const device = deviceFor(addr, devices);
      const e = this.entries.get(addr) ?? this.fresh(addr);
      e.state.services = svcs.map((s) => objectKey(s.metadata));
      e.state.why = !el.ok ? el.why : device ? el.why : 'no node device\'s subnet holds the address';
      const moved = e.device && device && (e.device.ifindex !== device.ifindex || e.device.mac !== device.mac);
      e.device = device;
      e.state.device = device?.name ?? '';
      const want = el.ok && !!device;
      if (src.announceLease) await this.campaign(e, want);
      else this.manifestsChoice(e, want, withSlices);
      if (moved && e.state.announcing) this.write(e, true);
    }
    for (const addr of [...this.entries.keys()]) if (!byAddr.has(addr)) await this.drop(addr);
  }

  private fresh(addr: string): Entry {
    const e: Entry = { state: { addr, services: [], announcing: false, announcer: '', why: '', device: '', since: 0 }, expires: 0n };
    this.entries.set(addr, e);
    return e;
  }

  /** Kube mode: campaign while eligible; give up (entry first, then the Lease) when not. */
  private async campaign(e: Entry, want: boolean): Promise<void> {
    if (want && !e.campaign) {
      const addr = e.state.addr;
      e.campaign = this.d.source.announceLease!(addr, {
        // The rendezvous order as a head start: the first choice takes a free Lease at once,
        // the others up to a third of the duration later.
        acquireDelayMs: Math.floor((announceScore(addr, this.d.node) / 2 ** 32) * (this.d.leaseDurationMs / 3)),
        onRenew: (validForMs) => {
          e.expires = process.hrtime.bigint() + BigInt(Math.max(0, Math.floor(validForMs))) * 1_000_000n;
          if (e.state.announcing) this.write(e, false);
        },
        onChange: (holding) => (holding ? this.take(e) : this.release(e)),
      });
    } else if (!want && e.campaign) {
      this.release(e);
      const c = e.campaign;
      e.campaign = undefined;
      await c.stop(true);
    }
    if (!e.state.announcing) e.state.announcer = '';
  }

  /** Manifests mode: the first eligible node among the directory's Nodes holds the address. */
  private manifestsChoice(e: Entry, want: boolean, withSlices: Parameters<typeof eligibility>[1]): void {
    const nodes = this.d.source.nodes?.() ?? [];
    const eligible = nodes.map((n) => n.metadata?.name ?? '').filter((name) => {
      if (name === this.d.node) return want;
      const n = nodes.find((x) => x.metadata?.name === name);
      const label = n?.metadata?.labels?.[ENABLED_LABEL];
      const enabled = label === 'true' || (label !== 'false' && this.d.enabledByDefault);
      return eligibility({ name, enabled, node: n }, withSlices).ok;
    });
    if (want && !eligible.includes(this.d.node)) eligible.push(this.d.node); // a Node the directory lacks is still this one
    const first = announceOrder(e.state.addr, eligible)[0] ?? '';
    e.state.announcer = first;
    if (want && first === this.d.node) {
      e.expires = process.hrtime.bigint() + BigInt(3 * MANIFEST_RENEW_MS) * 1_000_000n;
      if (e.state.announcing) this.write(e, false);
      else this.take(e);
    } else {
      if (want) e.state.why = `${first} comes first among the eligible nodes`;
      this.release(e);
    }
  }

  /** Took the address over: entry (with its expiry), then gratuitous ARP / unsolicited NA. */
  private take(e: Entry): void {
    if (e.state.announcing || this.stopped) return;
    e.state.announcing = true;
    e.state.announcer = this.d.node;
    e.state.since = Date.now();
    this.takeovers++;
    this.d.log.info({ addr: e.state.addr, device: e.state.device, why: e.state.why }, 'announcing LoadBalancer address');
    this.write(e, true);
  }

  private release(e: Entry): void {
    if (!e.state.announcing) return;
    e.state.announcing = false;
    e.state.since = 0;
    e.expires = 0n;
    try {
      this.d.obj.map(C.MAP.announce).delete(C.encodeAnnounceKey(e.state.addr));
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT') this.d.log.warn({ addr: e.state.addr, err: String(err) }, 'could not delete the announce entry');
    }
    this.d.log.info({ addr: e.state.addr, why: e.state.why }, 'no longer announcing LoadBalancer address');
  }

  private write(e: Entry, garp: boolean): void {
    const dev = e.device;
    if (!dev || !e.expires) return;
    this.d.obj.map(C.MAP.announce).update(C.encodeAnnounceKey(e.state.addr), C.encodeAnnounceValue({ ifindex: dev.ifindex, flags: announceFlag(e.state.addr), expires: e.expires }));
    if (garp && dev.mac) this.garp(dev.ifindex, dev.mac, e.state.addr, GARP_COUNT);
  }

  private garp(ifindex: number, mac: string, addr: string, left: number): void {
    if (left <= 0 || this.stopped || !this.entries.get(addr)?.state.announcing) return;
    try {
      (this.d.sendGarp ?? sendTakeover)(ifindex, mac, addr);
    } catch (err) {
      this.garpErrors++;
      this.d.log.warn({ addr, err: String(err) }, 'gratuitous ARP / unsolicited neighbour advertisement not sent');
    }
    setTimeout(() => this.garp(ifindex, mac, addr, left - 1), GARP_GAP_MS).unref();
  }

  private async drop(addr: string): Promise<void> {
    const e = this.entries.get(addr);
    if (!e) return;
    this.release(e);
    this.entries.delete(addr);
    await e.campaign?.stop(true);
  }
}
