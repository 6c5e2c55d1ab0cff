import type { Command } from 'commander';
import { escapeText } from '@primer-search/core';
import type { RetrainPlan, RetrainRun } from '@primer-search/study';
import { UsageError, type CliIo } from '../io.js';
import { openForReading } from '../studies.js';
import { csvField } from '../format.js';
import { integer } from './dna.js';

const COLUMNS = ['retraining', 'kind', 'budget', 'program', 'label', 'seed', 'status', 'reused_from', 'step', 'tokens', 'seconds', 'flops', 'perplexity', 'in_context', 'recall'];

/** A number read from a study, as written: a finite number, else an empty field (a diverged run's last perplexity is not finite; older records lack some). */
const number = (x: unknown, digits?: number) => (typeof x === 'number' && Number.isFinite(x) ? (digits === undefined ? String(x) : x.toFixed(digits)) : '');
/** Text read from a study: its control and direction characters escaped, then made a CSV field. */
const text = (x: unknown) => csvField(escapeText(String(x ?? ''), 10_000));

/** What a retraining is: a fidelity measurement's spread sample, a Pareto front, or the best programs. */
const kindOf = (plan: RetrainPlan) => (plan.sample !== undefined ? 'fidelity' : plan.front ? 'front' : 'retrain');

/** Where a reused run was trained: another retraining of this study, or one of another study. */
function reusedFrom(r: RetrainRun): string {
  const from = r.reusedFrom;
  if (!from) return '';
  return `${from.study === undefined ? '' : `${from.study} `}retraining ${from.retrain}`;
}

/**
 * The CSV of retraining runs' validation curves: one row per evaluation of each run, in the
 * order of the retrainings, their seeds and their programs. What it prints of the study is data:
 * text escaped and quoted, numbers only when they are finite numbers.
 */
export function curvesCsv(plans: RetrainPlan[], runs: RetrainRun[]): string {
  const lines = [COLUMNS.join(',')];
  for (const plan of plans) {
    const mine = runs.filter((r) => r.retrain === plan.id).sort((a, b) => a.seed - b.seed || a.program - b.program);
    for (const r of mine) {
      const head = [number(plan.id), kindOf(plan), text(plan.budget), number(r.program), text(plan.programs[r.program]?.label ?? `program ${r.program}`), number(r.seed), text(r.status), text(reusedFrom(r))];
      for (const e of Array.isArray(r.curve) ? r.curve : []) {
        lines.push([...head, number(e?.step), number(e?.tokens), number(e?.seconds, 3), number(e?.flops), number(e?.perplexity, 6), number(e?.inContext, 6), number(e?.recall, 6)].join(','));
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
      "Print the validation curves of a study's retraining runs as CSV, one row per evaluation: retraining, kind (retrain, front, or fidelity: a primer study fidelity sample), budget, program, label, seed, status (failed runs included, up to their last evaluation), reused_from (a run copied from another retraining, printed again under each that holds it), step, tokens, seconds, flops, perplexity, in_context, recall. " +
        'To plot learning curves, or to read at what compute one program overtakes another (the tables show only the final perplexities). A run stopped before its first evaluation has no row.',
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
        const runs = (await store.retrainRuns(o.retrain)).filter((r) => chosen.some((p) => p.id === r.retrain));
        const csv = curvesCsv(chosen, runs);
        if (o.out) {
          io.writeFile(o.out, csv);
          const rows = runs.reduce((n, r) => n + (Array.isArray(r.curve) ? r.curve.length : 0), 0);
          io.stderr(`${o.out}: ${rows} evaluations of ${runs.filter((r) => Array.isArray(r.curve) && r.curve.length > 0).length} runs\n`);
        } else io.stdout(csv);
      } finally {
        await store.close();
      }
    });
}
