import type { Command } from 'commander';
import { escapeText } from '@primer-search/core';
import type { RetrainPlan, RetrainRun } from '@primer-search/study';
import { UsageError, type CliIo } from '../io.js';
import { openForReading } from '../studies.js';
import { csvField } from '../format.js';
import { integer } from './dna.js';

const COLUMNS = ['retraining', 'budget', 'program', 'label', 'seed', 'status', 'step', 'tokens', 'flops', 'seconds', 'perplexity', 'in_context'];

/**
 * The CSV of retraining runs' validation curves: one row per evaluation of each run, in the
 * order of the retrainings, their seeds and their programs. A label is the study's data: its
 * control and direction characters are escaped, so that the text printed is only text.
 */
export function curvesCsv(plans: RetrainPlan[], runs: RetrainRun[]): string {
  const lines = [COLUMNS.join(',')];
  for (const plan of plans) {
    const mine = runs.filter((r) => r.retrain === plan.id).sort((a, b) => a.seed - b.seed || a.program - b.program);
    for (const r of mine) {
      const label = csvField(escapeText(plan.programs[r.program]?.label ?? `program ${r.program}`, 200));
      for (const e of r.curve) {
        lines.push(
          [plan.id, csvField(plan.budget), r.program, label, r.seed, r.status, e.step, e.tokens, e.flops ?? '', e.seconds.toFixed(3), e.perplexity.toFixed(6), e.inContext === undefined ? '' : e.inContext.toFixed(6)].join(','),
        );
      }
    }
  }
  return `${lines.join('\n')}\n`;
}

/** primer study curves STUDY: the retraining runs' validation curves as CSV, to plot or to read where two programs cross. */
export function curvesCommand(study: Command, io: CliIo): void {
  study
    .command('curves')
    .description(
      "Print the validation curves of a study's retraining runs (primer study retrain and fidelity) as CSV, one row per evaluation: retraining, budget, program, label, seed, status, step, tokens, flops, seconds, perplexity, in_context. " +
        'To plot learning curves, or to read at what compute one program overtakes another (the tables show only the final perplexities).',
    )
    .argument('<study>', 'the study: a file, sqlite:///path or postgres://...')
    .option('--retrain <id>', 'only this retraining (its number, as primer study show prints it)', integer('--retrain', 1))
    .option('--out <file>', 'write the CSV to this file instead of printing it')
    .action(async (location: string, o: { retrain?: number; out?: string }) => {
      const store = await openForReading(location);
      try {
        const plans = await store.retrains();
        const chosen = o.retrain === undefined ? plans : plans.filter((p) => p.id === o.retrain);
        if (o.retrain !== undefined && chosen.length === 0) {
          throw new UsageError(`--retrain: the study has no retraining ${o.retrain} (${plans.length ? `its retrainings: ${plans.map((p) => p.id).join(', ')}` : 'it has none: primer study retrain makes one'})`);
        }
        const runs = await store.retrainRuns(o.retrain);
        const text = curvesCsv(chosen, runs);
        if (o.out) {
          io.writeFile(o.out, text);
          io.stderr(`${o.out}: ${text.split('\n').length - 2} evaluations of ${runs.filter((r) => chosen.some((p) => p.id === r.retrain)).length} runs\n`);
        } else io.stdout(text);
      } finally {
        await store.close();
      }
    });
}
