import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { hardwareDifferences, pluginDifferences, pluginIdentity, pluginName, trainingEnvironment, type TrainingEnvironment } from './environment.js';

const env = (over: Partial<TrainingEnvironment> = {}): TrainingEnvironment => ({ host: 'a', backend: 'wasm', device: 'CPU X x2', tfjs: '4.22.0', project: '0.1.0', node: 'v20', ...over });

describe('training environments', () => {
  it('describes this process with the project version from its package.json', () => {
    const e = trainingEnvironment('wasm', '4.22.0');
    expect(e).toMatchObject({ backend: 'wasm', tfjs: '4.22.0', node: process.version, project: '0.1.0' });
    expect(e.device).toMatch(/ x\d+$/);
  });

  it('the backend always counts; the processor only under a time budget', () => {
    expect(hardwareDifferences(env(), env({ host: 'b' }), { kind: 'seconds', seconds: 30 })).toEqual([]);
    expect(hardwareDifferences(env(), env({ backend: 'cpu' }), { kind: 'steps', steps: 10 })).toEqual([expect.stringContaining('backend cpu here, wasm on the study')]);
    expect(hardwareDifferences(env(), env({ device: 'CPU Y x16' }), { kind: 'steps', steps: 10 })).toEqual([]);
    expect(hardwareDifferences(env(), env({ device: 'CPU Y x16' }), { kind: 'seconds', seconds: 30 })).toEqual([expect.stringContaining('processor CPU Y x16 here, CPU X x2')]);
  });
});

describe('plugin identities', () => {
  it('names a plugin by its package or its file name, on any machine', () => {
    expect(pluginName('@acme/ops/sub/path.js')).toBe('@acme/ops');
    expect(pluginName('acme-ops')).toBe('acme-ops');
    expect(pluginName('file:///home/me/plugins/ops.mjs')).toBe('ops.mjs');
    expect(pluginName('./plugins/ops.mjs')).toBe('ops.mjs');
  });

  it('identifies a file by its code and a package by its version; compares them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'primer-plugin-'));
    const a = join(dir, 'ops.mjs');
    writeFileSync(a, 'export const x = 1;\n');
    const other = join(dir, 'other', 'ops.mjs');
    mkdirSync(join(dir, 'other'));
    writeFileSync(other, 'export const x = 2;\n');
    mkdirSync(join(dir, 'node_modules', '@acme', 'ops'), { recursive: true });
    writeFileSync(join(dir, 'node_modules', '@acme', 'ops', 'package.json'), JSON.stringify({ name: '@acme/ops', version: '1.2.3' }));
    const here = pluginIdentity(pathToFileURL(a).href);
    expect(here).toEqual({ name: 'ops.mjs', sha256: expect.stringMatching(/^[0-9a-f]{16}$/) });
    expect(pluginIdentity(a)).toEqual(here);
    expect(pluginIdentity('@acme/ops', dir)).toEqual({ name: '@acme/ops', version: '1.2.3' });
    expect(pluginIdentity('@acme/absent', dir)).toEqual({ name: '@acme/absent' });
    expect(pluginDifferences([here], [here])).toEqual([]);
    expect(pluginDifferences([here], [pluginIdentity(other)])).toEqual([expect.stringContaining('the plugin ops.mjs has different code here')]);
    expect(pluginDifferences([here, { name: '@acme/ops', version: '1.2.3' }], [here, { name: '@acme/ops', version: '2.0.0' }])).toEqual(['the plugin @acme/ops is version 2.0.0 here, 1.2.3 in the study']);
    expect(pluginDifferences([here], [])).toEqual([expect.stringContaining('the plugin ops.mjs is missing')]);
    expect(pluginDifferences([], [here])).toEqual(['the plugin ops.mjs is loaded here but not by the study']);
    // a name alone (code not found on the controller) matches any code
    expect(pluginDifferences([{ name: 'ops.mjs' }], [here])).toEqual([]);
  });
});
