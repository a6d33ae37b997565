/** Summary of one database's probes over the retention window. */
export interface HistorySummary {
  samples: number;
  since: number | undefined;
  /** Share of probes that found it up, 0..1. */
  availability: number | undefined;
  averageResponseSeconds: number | undefined;
  maxResponseSeconds: number | undefined;
}

export interface HistorySample {
  at: number;
  up: boolean;
  responseTimeSeconds: number;
}

/**
 * Probe history of one database for `history_retention_hours`, in typed arrays:
 * 13 bytes a probe, so a day at one probe a second is about 1 MB.
 */
export class ProbeHistory {
  private at: Float64Array;
  private seconds: Float32Array;
  private up: Uint8Array;
  private start = 0;
  private length = 0;

  constructor(
    private readonly retentionMs: number,
    initialCapacity = 64,
  ) {
    this.at = new Float64Array(initialCapacity);
    this.seconds = new Float32Array(initialCapacity);
    this.up = new Uint8Array(initialCapacity);
  }

  add(at: number, up: boolean, responseTimeSeconds: number): void {
    this.dropBefore(at - this.retentionMs);
    if (this.length === this.at.length) this.grow();
    const i = (this.start + this.length) % this.at.length;
    this.at[i] = at;
    this.seconds[i] = responseTimeSeconds;
    this.up[i] = up ? 1 : 0;
    this.length++;
  }

  samples(now: number = Date.now()): HistorySample[] {
    this.dropBefore(now - this.retentionMs);
    const out: HistorySample[] = [];
    for (let k = 0; k < this.length; k++) {
      const i = (this.start + k) % this.at.length;
      out.push({ at: this.at[i]!, up: this.up[i] === 1, responseTimeSeconds: this.seconds[i]! });
    }
    return out;
  }

  summary(now: number = Date.now()): HistorySummary {
    const samples = this.samples(now);
    if (samples.length === 0) {
      return { samples: 0, since: undefined, availability: undefined, averageResponseSeconds: undefined, maxResponseSeconds: undefined };
    }
    const upCount = samples.filter((s) => s.up).length;
    const times = samples.map((s) => s.responseTimeSeconds);
    return {
      samples: samples.length,
      since: samples[0]!.at,
      availability: upCount / samples.length,
      averageResponseSeconds: times.reduce((a, b) => a + b, 0) / times.length,
      maxResponseSeconds: times.reduce((a, b) => Math.max(a, b), 0),
    };
  }

  private dropBefore(cutoff: number): void {
    while (this.length > 0 && this.at[this.start]! < cutoff) {
      this.start = (this.start + 1) % this.at.length;
      this.length--;
    }
  }

  private grow(): void {
    const size = this.at.length * 2;
    const at = new Float64Array(size);
    const seconds = new Float32Array(size);
    const up = new Uint8Array(size);
    for (let k = 0; k < this.length; k++) {
      const i = (this.start + k) % this.at.length;
      at[k] = this.at[i]!;
      seconds[k] = this.seconds[i]!;
      up[k] = this.up[i]!;
    }
    this.at = at;
    this.seconds = seconds;
    this.up = up;
    this.start = 0;
  }
}
