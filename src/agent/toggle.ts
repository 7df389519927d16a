// Whether xlb runs on this node, and what decided it: `xlb toggle on|off` (manifests source
// only; a file beside the API socket, one entry per node), else the Node label xlb.io/enabled,
// else --enabled-by-default. In kube mode the label is the switch and `xlb toggle` names it.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { AgentOptions } from './options.js';
import { ENABLED_LABEL } from '../model/node.js';
import { ViewError, type EnabledReason } from '../api/view.js';

interface ToggleFile { [node: string]: boolean }

export class Toggle {
  enabled = false;
  reason: EnabledReason = 'default';

  constructor(private readonly o: Pick<AgentOptions, 'source' | 'node' | 'apiSocket' | 'enabledByDefault'>) {}

  /** Decide again from the toggle file, the Node's labels and the default. */
  decide(labels: Record<string, string> | undefined): { enabled: boolean; reason: EnabledReason } {
    const t = this.o.source === 'manifests' ? this.read() : undefined;
    const label = labels?.[ENABLED_LABEL];
    if (t !== undefined) [this.enabled, this.reason] = [t, 'toggle'];
    else if (label === 'true' || label === 'false') [this.enabled, this.reason] = [label === 'true', 'label'];
    else [this.enabled, this.reason] = [this.o.enabledByDefault, 'default'];
    return { enabled: this.enabled, reason: this.reason };
  }

  /** Records `xlb toggle on|off` for this node; decide() reads it. */
  write(on: boolean): void {
    if (this.o.source !== 'manifests') {
      throw new ViewError('FAILED_PRECONDITION', `in kube mode xlb follows the Node label: kubectl label node ${this.o.node} ${ENABLED_LABEL}=${on} --overwrite`);
    }
    const file = this.file();
    let state: ToggleFile = {};
    try { state = JSON.parse(readFileSync(file, 'utf8')) as ToggleFile; } catch { /* first toggle */ }
    state[this.o.node] = on;
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(state));
  }

  private file(): string {
    return join(dirname(this.o.apiSocket), 'toggle.json');
  }

  private read(): boolean | undefined {
    try {
      return (JSON.parse(readFileSync(this.file(), 'utf8')) as ToggleFile)[this.o.node];
    } catch {
      return undefined;
    }
  }
}
