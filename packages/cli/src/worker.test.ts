import { DEFAULT_RUN_SETTINGS, type StudyConfig, type TrainingEnvironment } from '@primer-search/study';
import { describe, expect, it } from 'vitest';
import { joinRefusal } from './commands/worker.js';

const env = (over: Partial<TrainingEnvironment> = {}): TrainingEnvironment => ({ host: 'a', backend: 'wasm', products: 'native BLAS', device: 'CPU X x2', tfjs: '4.22.0', project: '0.1.0', node: 'v20', ...over });
const config = (settings: Partial<StudyConfig['settings']>): StudyConfig => ({ plugins: [], settings: { ...DEFAULT_RUN_SETTINGS, ...settings } }) as unknown as StudyConfig;
const seconds = { kind: 'seconds', seconds: 30 } as const;

describe('which workers may join a study (joinRefusal)', () => {
  it('the first worker joins; a forced backend is checked against the study, the processor against its first worker', () => {
    expect(joinRefusal(config({ budget: seconds }), undefined, env(), [])).toEqual([]);
    expect(joinRefusal(config({ budget: seconds, backend: 'wasm' }), undefined, env({ backend: 'cpu' }), [])).toEqual(['backend cpu here, but the study was created with --backend wasm']);
    // the study forces wasm and this worker has it, but its processor differs from the first worker's: refused under a time budget
    const other = env({ host: 'b', device: 'CPU Y x16' });
    expect(joinRefusal(config({ budget: seconds, backend: 'wasm' }), { environment: env() }, other, [])).toEqual([expect.stringContaining('processor CPU Y x16 here')]);
    expect(joinRefusal(config({ budget: { kind: 'steps', steps: 10 }, backend: 'wasm' }), { environment: env() }, other, [])).toEqual([]);
    // a forced backend that differs is said once
    expect(joinRefusal(config({ budget: { kind: 'steps', steps: 10 }, backend: 'wasm' }), { environment: env() }, env({ backend: 'cpu' }), [])).toHaveLength(1);
    expect(joinRefusal(config({ budget: seconds }), { environment: env() }, env({ products: 'XNNPACK (wasm)' }), [])).toEqual([expect.stringContaining('products by XNNPACK (wasm) here')]);
  });

  it('plugins: the first worker\'s, or the names the study was created with', () => {
    const c = { ...config({ budget: seconds }), plugins: ['file:///home/me/ops.mjs'] } as StudyConfig;
    expect(joinRefusal(c, undefined, env(), [])).toEqual([expect.stringContaining('the plugin ops.mjs is missing')]);
    expect(joinRefusal(c, undefined, env(), [{ name: 'ops.mjs', sha256: 'ab' }])).toEqual([]);
    expect(joinRefusal(c, { environment: env(), plugins: [{ name: 'ops.mjs', sha256: 'ab' }] }, env(), [{ name: 'ops.mjs', sha256: 'cd' }])).toEqual([expect.stringContaining('different code here')]);
  });
});
