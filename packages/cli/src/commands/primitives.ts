import type { Command } from 'commander';
import { primitives, type PrimitiveDescriptor } from '@primer-search/primitives';
import type { CliIo } from '../io.js';
import { jsonText } from '../format.js';

export function describePrimitive(d: PrimitiveDescriptor) {
  return {
    name: d.name,
    category: d.category,
    arity: d.arity,
    reads: { input1: true, input2: d.arity === 2, constant: d.reads.constant, dimSize: d.reads.dimSize },
    sequenceMixing: d.sequenceMixing,
    doc: d.doc,
  };
}

export function primitivesCommand(program: Command, io: CliIo): void {
  program
    .command('primitives')
    .description('List the op vocabulary a DNA may use: arity, the instruction fields each op reads, what it computes.')
    .option('--json', 'print machine-readable JSON')
    .action((opts: { json?: boolean }) => {
      const list = primitives.list().map(({ entry }) => describePrimitive(entry));
      if (opts.json) {
        io.stdout(jsonText(list));
        return;
      }
      const rows = list.map((p) => [
        p.name,
        String(p.arity),
        Object.entries(p.reads).filter(([, v]) => v).map(([k]) => k).join(','),
        p.sequenceMixing === 'causal' ? 'causal' : '-',
        p.doc,
      ]);
      const head = ['OP', 'ARITY', 'READS', 'SEQUENCE', 'COMPUTES'];
      const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
      const line = (r: string[]) => r.map((x, c) => (c === r.length - 1 ? x : x.padEnd(widths[c]!))).join('  ');
      io.stdout(`${[line(head), ...rows.map(line)].join('\n')}\n`);
      io.stdout(`\n${list.length} primitives. Any subprogram may also CALL a subprogram numbered above it.\n`);
    });
}
