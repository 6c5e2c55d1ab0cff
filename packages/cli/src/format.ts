// Numbers and durations as the commands print them.

/** A number with thousands separators and `digits` decimals. */
export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
/** Seconds for people: 42.5s, 3m 05s, 2h 07m (rounded as a whole, so never "3m 60s"). */
export const duration = (s: number): string => {
  if (s < 59.95) return `${s.toFixed(1)}s`;
  const t = Math.round(s);
  if (t < 3600) return `${Math.floor(t / 60)}m ${String(t % 60).padStart(2, '0')}s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
};
