import { dModel as dModelFlag } from '../flags.js';
import type { Command } from 'commander';
import { baselines } from '@primer-search/baselines';
import { planBlock } from '@primer-search/compiler';
import type { CliIo } from '../io.js';
import { jsonText } from '../format.js';
import { DEFAULT_D_MODEL, integer } from './dna.js';

export function baselinesCommand(program: Command, io: CliIo): void {
  program
    .command('baselines')
    .description("List the paper's baseline models, written as DNA, with parameters and FLOPs per token of one block.")
    .option('--d-model <n>', `model width (default ${DEFAULT_D_MODEL})`, dModelFlag)
    .option('--seq-len <n>', 'sequence length, for attention FLOPs (default 64)', integer('--seq-len', 1))
    .option('--json', 'print machine-readable JSON')
    .action((opts: { dModel?: number; seqLen?: number; json?: boolean }) => {
      const dModel = opts.dModel ?? DEFAULT_D_MODEL;
      const seqLen = opts.seqLen ?? 64;
      const rows = baselines.list().map(({ name, entry }) => {
        const plan = planBlock(entry.build({ dModel }), { dModel, seqLen });
        return {
          name,
          title: entry.title,
          parametersPerBlock: plan.estimate.parameters,
          forwardFlopsPerToken: Math.round(plan.estimate.forwardFlopsPerToken),
          description: entry.description,
        };
      });
      if (opts.json) {
        io.stdout(jsonText({ dModel, seqLen, baselines: rows }));
        return;
      }
      io.stdout(`One block at dModel ${dModel}, sequence ${seqLen}:\n\n`);
      for (const r of rows) {
        io.stdout(
          `${r.name.padEnd(14)} ${r.title.padEnd(20)} ${r.parametersPerBlock.toLocaleString('en-US').padStart(10)} params  ` +
            `${(r.forwardFlopsPerToken / 1e6).toFixed(2).padStart(7)} MFLOP/token\n${' '.repeat(15)}${r.description}\n\n`,
        );
      }
      io.stdout('Show one as code: primer dna show NAME [--d-model N]\n');
    });
}
