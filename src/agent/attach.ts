// Attaches xlb's programs through pinned links, so the datapath outlives the agent and a new
// agent replaces programs atomically (link update) instead of detach + attach. Only links
// pinned under our own pin path are ever touched: programs others attached stay as they are.
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Link, ifIndex, type BpfProgram, type CgroupHook, type XdpMode } from '../datapath/bpf.js';
import type { Logger } from '../log.js';
import type { DeviceMode } from './options.js';

/** xdp and tc-device: node devices (xlb_xdp / xlb_tc_dev; XDP devices get tc-device too, for
 *  the replies XDP leaves to tc); tc-ingress: pod veths (xlb_tc); tc-egress: pod veths toward
 *  the pod and tc-device-egress: node devices (xlb_tc_host: replies from the node's own
 *  endpoints, and replies of flows netfilter tracks, reverse-translated after it). */
export type AttachKind = 'xdp' | 'tc-device' | 'tc-ingress' | 'tc-egress' | 'tc-device-egress';

export interface Attachment {
  ifname: string;
  kind: AttachKind;
  ifindex: number;
  linkId: number;
  progId: number;
  mode?: XdpMode;
}

export interface AttachError {
  ifname: string;
  kind: AttachKind;
  error: string;
}

const PREFIX: Record<AttachKind, string> = { xdp: 'xdp-', 'tc-device': 'tcd-', 'tc-ingress': 'tci-', 'tc-egress': 'tce-', 'tc-device-egress': 'tco-' };

export interface DeviceChoice { mode: 'xdp' | 'tc'; why: string }

/** A socket LB hook attached to a cgroup (pinned as links/sock-<hook>). */
export interface CgroupAttachment {
  hook: CgroupHook;
  cgroup: string;
  linkId: number;
  progId: number;
}

const SOCK_PREFIX = 'sock-';

/**
 * Which hook a node device gets. A veth in native XDP turns every skb into an XDP frame and
 * copies it whenever it is cloned (every TCP segment a local socket sent) or non-linear, makes
 * its peer give up GSO, and hands XDP partial checksums it cannot see; at tc ingress the skb
 * is used as it is. On a NIC XDP runs before any skb exists, which is what it is for.
 */
export function chooseDeviceMode(want: DeviceMode, linkKind: string): DeviceChoice {
  if (want === 'xdp') return { mode: 'xdp', why: '--device-mode xdp' };
  if (want === 'tc') return { mode: 'tc', why: '--device-mode tc' };
  if (linkKind === 'veth') return { mode: 'tc', why: 'veth: native XDP would copy every cloned skb and cannot see partial checksums' };
  return { mode: 'xdp', why: linkKind ? `${linkKind} device` : 'physical device' };
}

export class Attacher {
  private readonly dir: string;
  private readonly live = new Map<string, { link: Link; att: Attachment }>();
  readonly errors = new Map<string, AttachError>();

  constructor(pinPath: string, private readonly log: Logger, private readonly xdpMode: XdpMode | 'auto' = 'auto') {
    this.dir = join(pinPath, 'links');
  }

  private path(kind: AttachKind, ifname: string): string {
    return join(this.dir, PREFIX[kind] + ifname);
  }

  /** Attach (or atomically update) prog on each interface; detach ours from the others of this kind. */
  sync(kind: AttachKind, prog: BpfProgram, ifnames: string[]): void {
    mkdirSync(this.dir, { recursive: true });
    const want = new Set(ifnames);
    for (const ifname of want) {
      const key = `${kind}:${ifname}`;
      try {
        this.ensure(kind, prog, ifname);
        this.errors.delete(key);
      } catch (e) {
        const err = e as Error & { code?: string };
        const msg = `${err.code ?? 'ERROR'}: ${err.message}`;
        if (this.errors.get(key)?.error !== msg) this.log.warn({ ifname, kind, err: msg }, 'attach failed');
        this.errors.set(key, { ifname, kind, error: msg });
      }
    }
    for (const name of this.pinnedNames(kind)) {
      if (!want.has(name)) this.detach(kind, name);
    }
    for (const key of [...this.errors.keys()]) {
      const [k, n] = key.split(/:(.*)/s);
      if (k === kind && !want.has(n)) this.errors.delete(key);
    }
  }

  private ensure(kind: AttachKind, prog: BpfProgram, ifname: string): void {
    const key = `${kind}:${ifname}`;
    const ifindex = ifIndex(ifname);
    let cur = this.live.get(key);
    if (!cur && existsSync(this.path(kind, ifname))) {
      const link = Link.openPinned(this.path(kind, ifname));
      cur = { link, att: this.describe(ifname, kind, link) };
    }
    if (cur && cur.link.ifindex !== ifindex) {
      // The interface was recreated under the same name: the old link is defunct.
      this.drop(kind, ifname, cur.link);
      cur = undefined;
    }
    if (cur) {
      if (cur.link.progId() !== prog.id) {
        cur.link.update(prog);
        this.log.info({ ifname, kind, progId: prog.id }, 'program replaced atomically');
      }
      cur.att = this.describe(ifname, kind, cur.link);
      this.live.set(key, cur);
      return;
    }
    const link = kind === 'xdp' ? Link.attachXdp(prog, ifname, { mode: this.xdpMode }) : Link.attachTc(prog, ifname, kind === 'tc-egress' || kind === 'tc-device-egress' ? 'egress' : 'ingress');
    link.pin(this.path(kind, ifname));
    const att = this.describe(ifname, kind, link);
    this.live.set(key, { link, att });
    this.log.info({ ...att }, 'attached');
  }

  private describe(ifname: string, kind: AttachKind, link: Link): Attachment {
    return { ifname, kind, ifindex: link.ifindex, linkId: link.id, progId: link.progId(), mode: link.mode };
  }

  private pinnedNames(kind: AttachKind): string[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir).filter((f) => f.startsWith(PREFIX[kind])).map((f) => f.slice(PREFIX[kind].length));
  }

  private drop(kind: AttachKind, ifname: string, link: Link): void {
    try { link.detach(); } catch { /* interface gone: already detached */ }
    link.close();
    rmSync(this.path(kind, ifname), { force: true });
    this.live.delete(`${kind}:${ifname}`);
  }

  detach(kind: AttachKind, ifname: string): void {
    const key = `${kind}:${ifname}`;
    let link = this.live.get(key)?.link;
    try {
      if (!link && existsSync(this.path(kind, ifname))) link = Link.openPinned(this.path(kind, ifname));
    } catch (e) {
      this.log.warn({ ifname, kind, err: (e as Error).message }, 'pinned link unreadable');
    }
    if (link) {
      this.drop(kind, ifname, link);
      this.log.info({ ifname, kind }, 'detached');
    }
  }

  /** Whether any of our links is pinned (xlb serves, or drains, this node). */
  hasPinned(): boolean {
    return (Object.keys(PREFIX) as AttachKind[]).some((k) => this.pinnedNames(k).length > 0);
  }

  detachAll(): void {
    for (const kind of Object.keys(PREFIX) as AttachKind[]) {
      for (const name of this.pinnedNames(kind)) this.detach(kind, name);
    }
    this.syncCgroup(undefined, []);
  }

  private readonly sockLive = new Map<CgroupHook, { link: Link; att: CgroupAttachment }>();

  /**
   * Socket LB: each (hook, program) on the cgroup v2 directory, attached or atomically updated
   * through links/sock-<hook>; a pinned link on another cgroup (the cgroup id is the directory's
   * inode) is replaced, and our links of hooks not given are detached. A hook that fails to
   * attach is returned ("hook: CODE: message") and the others go on; a cgroup that cannot be
   * read throws.
   */
  syncCgroup(cgroup: string | undefined, progs: Array<[CgroupHook, BpfProgram]>): string[] {
    mkdirSync(this.dir, { recursive: true });
    const want = new Map(progs);
    const cgId = cgroup ? statSync(cgroup).ino : 0;
    const pinned = readdirSync(this.dir).filter((f) => f.startsWith(SOCK_PREFIX)).map((f) => f.slice(SOCK_PREFIX.length) as CgroupHook);
    for (const hook of new Set([...pinned, ...this.sockLive.keys()])) {
      if (!want.has(hook)) this.dropSock(hook);
    }
    const failed: string[] = [];
    for (const [hook, prog] of want) {
      try {
        this.syncHook(cgroup!, cgId, hook, prog);
      } catch (e) {
        const err = e as Error & { code?: string };
        failed.push(`${hook}: ${err.code ?? 'ERROR'}: ${err.message}`);
      }
    }
    return failed;
  }

  private syncHook(cgroup: string, cgId: number, hook: CgroupHook, prog: BpfProgram): void {
    const path = join(this.dir, SOCK_PREFIX + hook);
    let link = this.sockLive.get(hook)?.link;
    if (!link && existsSync(path)) link = Link.openPinned(path);
    if (link && link.cgroupId !== cgId) {
      this.dropSock(hook, link);
      link = undefined;
    }
    if (link && link.progId() !== prog.id) {
      link.update(prog);
      this.log.info({ hook, cgroup, progId: prog.id }, 'program replaced atomically');
    }
    if (!link) {
      link = Link.attachCgroup(prog, cgroup, hook);
      link.pin(path);
      this.log.info({ hook, cgroup, progId: prog.id }, 'attached');
    }
    this.sockLive.set(hook, { link, att: { hook, cgroup, linkId: link.id, progId: link.progId() } });
  }

  private dropSock(hook: CgroupHook, link?: Link): void {
    const path = join(this.dir, SOCK_PREFIX + hook);
    link ??= this.sockLive.get(hook)?.link;
    try {
      if (!link && existsSync(path)) link = Link.openPinned(path);
      link?.detach();
    } catch (e) {
      this.log.warn({ hook, err: (e as Error).message }, 'socket LB link: detach failed');
    }
    link?.close();
    rmSync(path, { force: true });
    this.sockLive.delete(hook);
    this.log.info({ hook }, 'detached');
  }

  cgroupAttachments(): CgroupAttachment[] {
    return [...this.sockLive.values()].map((v) => v.att);
  }

  attachments(): Attachment[] {
    return [...this.live.values()].map((v) => v.att);
  }

  /** Drop our fds; pinned links stay attached (the datapath outlives the agent). */
  close(): void {
    for (const { link } of [...this.live.values(), ...this.sockLive.values()]) link.close();
    this.live.clear();
    this.sockLive.clear();
  }
}
