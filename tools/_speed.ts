import * as tf from '@tensorflow/tfjs';
import { baselineDna } from '@primer-search/baselines';
import { compileLanguageModel } from '@primer-search/compiler';
import { BatchSampler, brown, byteTokenizer, evaluationBatches, tokenStream } from '@primer-search/datasets';
import { selectBackend, trainModel } from '@primer-search/trainer-gpu';
await selectBackend();
const tok = byteTokenizer();
const stream = tokenStream(brown.open(), 'train', tok);
for (const [d, layers, seq, batch] of [[128, 2, 64, 16], [64, 2, 64, 16], [64, 2, 64, 8]] as const) {
  for (const name of ['vanilla', 'primer-ez']) {
    const model = compileLanguageModel(baselineDna(name, { dModel: d }), { tf: tf as never, vocabSize: tok.vocabSize, layers, dModel: d, seqLen: seq, seed: 1 });
    const r = await trainModel({ model, sampler: new BatchSampler(stream, batch, seq, 1), evaluation: evaluationBatches(stream, 16, seq, 16), budget: { kind: 'steps', steps: 15 }, config: { checkpoints: [] } });
    console.log(name, { d, layers, seq, batch }, 'ms/step', (1000 * r.trainSeconds / r.steps).toFixed(0), 'tok/s', r.tokensPerSecond.toFixed(0), 'eval s', r.evalSeconds.toFixed(2));
    model.dispose();
  }
}
