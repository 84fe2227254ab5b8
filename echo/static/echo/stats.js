// Running totals and round-trip percentiles for the summary panel.

const MAX_SAMPLES = 10_000;

export class TrafficStats {
  constructor() {
    this.sent = { messages: 0, bytes: 0 };
    this.echoed = { messages: 0, bytes: 0 };
    // The most recent round trips only, so a long session keeps a bounded memory.
    this.roundTrips = [];
  }

  recordSent(size) {
    this.sent.messages += 1;
    this.sent.bytes += size;
  }

  recordEcho(size, roundTripMs) {
    this.echoed.messages += 1;
    this.echoed.bytes += size;
    this.roundTrips.push(roundTripMs);
    if (this.roundTrips.length > MAX_SAMPLES) this.roundTrips.shift();
  }

  /** The q-quantile (0..1) of the round trips by nearest rank, or null before any echo. */
  roundTripQuantile(q) {
    if (this.roundTrips.length === 0) return null;
    const sorted = [...this.roundTrips].sort((a, b) => a - b);
    const rank = Math.max(1, Math.ceil(q * sorted.length));
    return sorted[rank - 1];
  }
}

export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(2)} MiB`;
}

export function formatMs(ms) {
  return ms === null ? "–" : `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
}
