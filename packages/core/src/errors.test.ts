import { describe, expect, it } from 'vitest';
import { PrimerError, blameOf, isPrimerError, quote } from './errors.js';

describe('the failure taxonomy', () => {
  it('blames the program for invalid or oversized programs and its own exceptions, the environment for the rest', () => {
    expect(blameOf(new PrimerError('DNA_INVALID', 'x'))).toBe('program');
    expect(blameOf(new PrimerError('MODEL_TOO_LARGE', 'x'))).toBe('program');
    for (const code of ['DATASET_MISSING', 'BACKEND_UNAVAILABLE', 'BAD_TOKENIZER', 'TOKENIZER_TRAINING', 'BAD_PARALLEL']) {
      expect(blameOf(new PrimerError(code, 'x')), code).toBe('environment');
    }
    expect(blameOf(Object.assign(new Error('no space left on device'), { code: 'ENOSPC' }))).toBe('environment');
    expect(blameOf(Object.assign(new Error('read-only file system'), { code: 'EROFS' }))).toBe('environment');
    expect(blameOf(new TypeError('a primitive threw'))).toBe('program');
  });

  it('recognises our errors from another copy of the package (a plugin brings its own)', () => {
    const foreign = Object.assign(new Error('from another copy'), { code: 'DATASET_MISSING', [Symbol.for('primer-search.error')]: true });
    expect(isPrimerError(foreign)).toBe(true);
    expect(blameOf(foreign)).toBe('environment');
    expect(isPrimerError(new Error('plain'))).toBe(false);
  });
});

describe('quote', () => {
  it('escapes control and direction characters and cuts long strings, saying their length', () => {
    expect(quote('CONV_1X1')).toBe('"CONV_1X1"');
    expect(quote('a\u0000b\u202ec"d')).toBe('"a\\u0000b\\u202ec\\"d"');
    // a soft hyphen, a word joiner, a C1 CSI and a tag character of plane 14 (invisible text), as JSON would escape them
    expect(quote('a\u00adb\u2060c\u009bd\u{e0041}e')).toBe('"a\\u00adb\\u2060c\\u009bd\\udb40\\udc41e"');
    const long = quote('X'.repeat(100_000));
    expect(long.length).toBeLessThan(100);
    expect(long).toMatch(/^"X{60}…" \(100,000 characters\)$/);
  });
});
