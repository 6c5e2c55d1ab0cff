// Numbers, durations, tables and program diffs as the commands print them.
import { structuredPatch } from 'diff';
import { formatDna, type Dna } from '@primer-search/dna';
import type { RetrainSummary } from '@primer-search/study';
import { UNSAFE_CHARACTERS, unicodeEscape } from '@primer-search/core';

/**
 * A CSV field of text: quoted when it holds a comma, a quote or a line break, and led by an
 * apostrophe when it begins as a spreadsheet formula would (=, +, -, @, a tab or a carriage
 * return), so that a name read from a study or a file opens as text.
 */
export const csvField = (x: string) => {
  const text = /^[=+\-@\t\r]/.test(x) ? `'${x}` : x;
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
};

/** The characters a terminal acts on or hides (core's `UNSAFE_CHARACTERS`) but tab, line feed and carriage return. */
const UNSAFE = new RegExp(`(?![\\t\\n\\r])[${UNSAFE_CHARACTERS}]`, 'gu');
/** A carriage return that does not end a line or the text: it would let what follows overwrite the line. */
const LONE_CR = /\r(?!\n|$)/g;

/**
 * `value` as JSON for a terminal or a file (indented by `indent`; 0: one line): JSON.stringify's
 * text (`null` where it has none), with the characters a terminal acts on or hides that JSON
 * leaves as they are (DEL, C1, the format characters, the line and paragraph separators) written
 * as \u escapes. They occur only inside strings, so the text parses to the same value, but a name
 * read from a study cannot reorder or hide what a terminal shows around it.
 */
export const jsonText = (value: unknown, indent = 2): string => `${(JSON.stringify(value, null, indent) ?? 'null').replace(UNSAFE, unicodeEscape)}\n`;

/**
 * What the commands print, fit for a terminal: the characters a terminal acts on or hides (an
 * escape sequence's ESC, a C1 CSI, a backspace, a direction override, a zero-width character) and
 * a carriage return inside the text written as \u escapes, so that nothing read from a study, a
 * DNA file, a model's sampled text or a file name can recolour, reorder or hide what is around it,
 * or overwrite its line. Tab and line feed are kept (data holding a line feed can still start a
 * new line), and so is a carriage return at the end of a text (a progress line redrawn in place).
 */
export const terminalText = (text: string): string => text.replace(LONE_CR, unicodeEscape).replace(UNSAFE, unicodeEscape);

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

/** A line diff of the DNA's code against the seed's: live code only (dead instructions and the bodies of subprograms nothing calls are left out). */
export function dnaDiff(seed: Dna, dna: Dna, seedName = 'seed'): string {
  // the first line names the program and its hash, which always differ
  const body = (d: Dna) => formatDna(d, { showDead: false, showUnused: false }).split('\n').slice(1).join('\n');
  const a = body(seed);
  const b = body(dna);
  const patch = structuredPatch('seed', 'candidate', a, b, '', '', { context: 1 });
  if (patch.hunks.length === 0) return `  (the same code as the ${seedName})\n`;
  return `${patch.hunks.map((h) => `  @@ ${seedName} line ${h.oldStart + 1} @@\n${h.lines.map((l) => `  ${l}`).join('\n')}`).join('\n')}\n`;
}

/** A retraining's leaderboard, as the study package words it (the dashboard shows the same table). */
export function formatRetrain(r: RetrainSummary): string {
  return formatTable(r.table);
}

/** Rows (the header first) as aligned columns: the first left-aligned, the others right-aligned, two spaces apart. */
export function alignColumns(rows: string[][]): string {
  const widths = rows[0]!.map((_, k) => Math.max(...rows.map((row) => row[k]!.length)));
  return rows.map((row) => row.map((v, k) => (k === 0 ? v.padEnd(widths[k]!) : v.padStart(widths[k]!))).join('  ')).join('\n');
}

/** A table the study package words (a retraining's, a fidelity measurement's): title, aligned columns, notes, the closing lines. */
export function formatTable(t: { title: string; columns: string[]; rows: Array<{ cells: string[] }>; notes: string[]; end: string }): string {
  const lines = [t.title, alignColumns([t.columns, ...t.rows.map((x) => x.cells)]), ...t.notes, t.end];
  return `${lines.join('\n')}\n`;
}

