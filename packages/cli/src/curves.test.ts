import type { RetrainPlan, RetrainRun } from '@primer-search/study';
import { describe, expect, it } from 'vitest';
import { curvesCsv } from './commands/curves.js';

const plan = (over: Partial<RetrainPlan> = {}): RetrainPlan =>
  ({ id: 1, top: 1, budget: '8e13flops', seeds: [1], references: [], settings: {}, createdAt: '', programs: [{ label: 'seed (vanilla)', hash: 'a', candidate: 0, searchFitness: 1, dna: {} }], ...over }) as unknown as RetrainPlan;
const run = (over: Record<string, unknown>): RetrainRun => ({ retrain: 1, program: 0, seed: 1, status: 'completed', fitness: 40, reason: null, curve: [], ...over }) as unknown as RetrainRun;
const rows = (csv: string) => csv.trim().split('\n').slice(1);

describe('primer study curves: what a study holds, printed as CSV', () => {
  it('prints a diverged run up to its last finite evaluation, and empty fields for numbers a record lacks or holds as another kind', () => {
    const curve = [
      { step: 10, tokens: 160, seconds: 1.5, flops: 1e9, perplexity: 50.25, inContext: 0.1 },
      { step: 20, tokens: 320, seconds: 3, perplexity: null },
      { step: '30', tokens: 480, seconds: 4.5, flops: '1,2\u001b[2J', perplexity: Infinity, recall: 0.5 },
    ];
    expect(rows(curvesCsv([plan()], [run({ status: 'failed', curve })]))).toEqual([
      '1,retrain,8e13flops,0,seed (vanilla),1,failed,,10,160,1.500,1000000000,50.250000,0.100000,',
      '1,retrain,8e13flops,0,seed (vanilla),1,failed,,20,320,3.000,,,,',
      '1,retrain,8e13flops,0,seed (vanilla),1,failed,,,480,4.500,,,,0.500000',
    ]);
    // a run with no curve (stopped before its first evaluation, or a damaged record): no row
    expect(rows(curvesCsv([plan()], [run({ curve: null }), run({ curve: 'x' })]))).toEqual([]);
  });

  it('escapes and quotes the text it reads: control characters, commas, line breaks, and what a spreadsheet would run as a formula', () => {
    const hostile = plan({
      budget: '\u001b[31mRED\nx,y',
      sample: 4,
      programs: [{ label: '=HYPERLINK("http://x","a")', hash: 'a', candidate: null, searchFitness: null, dna: {} }, { label: '-2+3', hash: 'b', candidate: null, searchFitness: null, dna: {} }],
    } as Partial<RetrainPlan>);
    const out = curvesCsv([hostile], [
      run({ status: 'ok\u001b]0;title\u0007', curve: [{ step: 1, tokens: 2, seconds: 3, flops: 4, perplexity: 5 }] }),
      run({ program: 1, reusedFrom: { retrain: 2, program: 0, study: 'other,\u001b.sqlite' }, curve: [{ step: 1, tokens: 2, seconds: 3, flops: 4, perplexity: 6 }] }),
    ]);
    expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f]/);
    expect(rows(out)).toEqual([
      `1,fidelity,"\\u001b[31mRED\\u000ax,y",0,"'=HYPERLINK(""http://x"",""a"")",1,ok\\u001b]0;title\\u0007,,1,2,3.000,4,5.000000,,`,
      `1,fidelity,"\\u001b[31mRED\\u000ax,y",1,'-2+3,1,completed,"other,\\u001b.sqlite retraining 2",1,2,3.000,4,6.000000,,`,
    ]);
  });
});
