// The bench's progress line: which stage it is in, how far along, and how long is left,
// estimated from the time the stages done so far took per unit of planned work.
export interface Stage {
  name: string;
  /** relative cost, in the same unit for every stage */
  weight: number;
}

export class Progress {
  private done = 0;
  private doneWeight = 0;
  private readonly start: number;

  constructor(
    private readonly stages: Stage[],
    private readonly write: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
    private readonly now: () => number = () => performance.now(),
  ) {
    this.start = now();
  }

  /** Announces the next stage; call it once per planned stage, in order. */
  begin(name?: string): void {
    if (this.done > 0) this.doneWeight += this.stages[this.done - 1]!.weight;
    const st = this.stages[this.done];
    this.done++;
    const elapsed = (this.now() - this.start) / 1000;
    const total = this.stages.reduce((a, s) => a + s.weight, 0);
    const left = this.doneWeight > 0 ? `~${clock((elapsed / this.doneWeight) * (total - this.doneWeight))} left` : 'time left: after the first stage';
    this.write(`bench: [${this.done}/${this.stages.length}] ${name ?? st?.name ?? 'stage'} (${clock(elapsed)} elapsed, ${left})`);
  }

  /** The plan changed (a stage skipped): drop the stages that will not run. */
  skip(n: number): void {
    this.stages.splice(this.done, n);
  }
}

/** 75 -> "1m15s", 8 -> "8s". */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}
