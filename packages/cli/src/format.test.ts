import { describe, expect, it } from 'vitest';
import { jsonText, terminalText } from './format.js';

// every character a terminal acts on or hides, as data might hold it, and its escape written by hand
const HOSTILE: Array<[string, string]> = [
  ['\u001b[2J', '\\u001b[2J'], // ESC: an escape sequence (here: clear the screen)
  ['\u009b31m', '\\u009b31m'], // C1 CSI: the same in one character
  ['\u0008', '\\u0008'], // backspace
  ['\u0000', '\\u0000'],
  ['\u007f', '\\u007f'], // DEL
  ['\u202e', '\\u202e'], // right-to-left override
  ['\u2066', '\\u2066'], // left-to-right isolate
  ['\u200b', '\\u200b'], // zero-width space
  ['\u00ad', '\\u00ad'], // soft hyphen
  ['\u2028', '\\u2028'], // line separator
  ['\ufeff', '\\ufeff'],
  ['\u{e0041}', '\\udb40\\udc41'], // a tag character (plane 14): invisible text
];

describe('terminalText', () => {
  it('writes every character a terminal acts on or hides as \\u escapes', () => {
    for (const [raw, escaped] of HOSTILE) expect(terminalText(`a${raw}b`)).toBe(`a${escaped}b`);
  });

  it('keeps tab, line feed, CRLF and a carriage return that ends the text; escapes one inside it', () => {
    expect(terminalText('a\tb\nc\r\nd')).toBe('a\tb\nc\r\nd');
    expect(terminalText('done 3/10\r')).toBe('done 3/10\r');
    expect(terminalText('x\rfake.json: valid\n')).toBe('x\\u000dfake.json: valid\n');
  });

  it('leaves ordinary text, accents, symbols and emoji as they are', () => {
    const text = 'perplexity 35.50 ± 0.21 · naïve − café … 日本語 😀\n';
    expect(terminalText(text)).toBe(text);
  });
});

describe('jsonText', () => {
  it('escapes them inside strings and parses back to the same value', () => {
    const value = { names: HOSTILE.map(([raw]) => `a${raw}b`), nested: [{ 'key\u202e': 'x\u009by' }], n: 1.5, nothing: null };
    const text = jsonText(value);
    expect(text.endsWith('}\n')).toBe(true);
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]|[\u{e0000}-\u{e007f}]/u);
    expect(JSON.parse(text)).toEqual(value);
    // (JSON writes the C0 controls its own way, \b for a backspace; the others as above)
    for (const [raw, escaped] of HOSTILE) if (raw.codePointAt(0)! >= 0x7f) expect(text).toContain(`a${escaped}b`);
  });

  it('writes one line at indent 0, and null for a value JSON has no text for', () => {
    expect(jsonText({ a: ['\u202e'] }, 0)).toBe('{"a":["\\u202e"]}\n');
    expect(jsonText(undefined)).toBe('null\n');
  });
});
