import { hostname } from 'node:os';
import { failedResult, trainedSoFar, trainingEnvironment, trainingRecorded } from '@primer-search/study';
import { describe, expect, it } from 'vitest';
import { onThisMachine } from './commands/worker.js';

describe('a distributed worker records its results on its machine', () => {
  const me = trainingEnvironment('wasm', '4.22.0');
  const job = { candidate: 3, hash: 'h', hurdles: [] };

  it("gives a failure that trained its environment, and one that trained nothing none, so it is not counted as trained", () => {
    const crashedAtOnce = onThisMachine(failedResult(job, 'crashed: the worker died (exit code 7)'), me, false);
    expect([crashedAtOnce.environment, crashedAtOnce.machine]).toEqual([null, hostname()]);
    expect(trainingRecorded(crashedAtOnce)).toBe(false);
    const timedOut = onThisMachine(failedResult(job, 'timeout: no result after 60s', trainedSoFar({ candidate: 3, progress: 0.4, step: 12, trainLoss: 5, tokens: 768, seconds: 30, backend: 'wasm' })), me, false);
    expect(timedOut.environment).toEqual(me);
    expect([timedOut.steps, timedOut.tokens, timedOut.backend]).toEqual([12, 768, 'wasm']);
    expect(trainingRecorded(timedOut)).toBe(true);
    // a result with its own environment keeps it, marked when the worker joined with --allow-mixed-hardware
    const own = { ...timedOut, environment: { ...me, host: 'elsewhere' } };
    expect(onThisMachine(own, me, true).environment).toEqual({ ...me, host: 'elsewhere', mixedHardware: true });
  });
});
