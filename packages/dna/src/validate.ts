import { quote } from '@primer-search/core';
import { primitives as defaultPrimitives, type PrimitiveRegistry } from '@primer-search/primitives';
import { parse as parseJsonc, printParseErrorCode, type ParseError } from 'jsonc-parser';
import type { z } from 'zod';
import { analyzeDna, type DnaAnalysis } from './analyze.js';
import { DnaParseError, DnaValidationError, type DnaIssue } from './errors.js';
import { dnaSchema } from './schema.js';
import { subprogramLabel, type Dna } from './types.js';

export interface ValidateOptions {
  primitives?: PrimitiveRegistry;
  /** File name (or other origin) put in front of error messages. */
  source?: string;
}

export type ValidationResult =
  | { ok: true; dna: Dna; analysis: DnaAnalysis }
  | { ok: false; error: DnaValidationError };

function zodIssueToDnaIssue(issue: z.core.$ZodIssue): DnaIssue {
  const path = issue.path;
  const out: DnaIssue = { message: issue.message };
  const rest: PropertyKey[] = [];
  for (let k = 0; k < path.length; k++) {
    const key = path[k];
    if (key === 'subprograms' && typeof path[k + 1] === 'number') {
      out.subprogram = path[++k] as number;
    } else if (key === 'instructions' && typeof path[k + 1] === 'number') {
      out.instruction = path[++k] as number;
    } else {
      rest.push(key as PropertyKey);
    }
  }
  if (issue.code === 'invalid_type' && (issue as { input?: unknown }).input === undefined && rest.length > 0) {
    out.message = `missing field ${String(rest.at(-1))}`;
  }
  if (issue.code === 'unrecognized_keys') {
    out.message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.slice(0, 5).map((k) => quote(k)).join(', ')}${issue.keys.length > 5 ? ` and ${issue.keys.length - 5} more` : ''}`;
  }
  if (rest.length) out.field = rest.map(String).join('.');
  return out;
}

/**
 * Checks a parsed JSON value: the schema, then names, indices and call order, then
 * shapes. Never throws: every problem comes back as a typed DnaValidationError naming the
 * subprogram, instruction and field at fault.
 */
export function validateDna(value: unknown, options: ValidateOptions = {}): ValidationResult {
  const parsed = dnaSchema.safeParse(value, { reportInput: true });
  if (!parsed.success) {
    const subs = (value as { subprograms?: unknown } | null)?.subprograms;
    const names = Array.isArray(subs)
      ? subs.map((x: { name?: unknown } | null) => ({ name: typeof x?.name === 'string' ? x.name : undefined }))
      : [];
    return {
      ok: false,
      error: new DnaValidationError(parsed.error.issues.map(zodIssueToDnaIssue), { source: options.source, subprogramName: (i) => subprogramLabel({ subprograms: names }, i) }),
    };
  }
  const { $schema: _ignored, ...rest } = parsed.data as Dna & { $schema?: string };
  const dna = rest as Dna;
  let analysis: DnaAnalysis;
  try {
    analysis = analyzeDna(dna, options.primitives ?? defaultPrimitives);
  } catch (e) {
    // A plugin primitive's shape rule threw: report it against the DNA rather than crash.
    const message = e instanceof Error ? e.message : String(e);
    return { ok: false, error: new DnaValidationError([{ message: `shape inference failed: ${message}` }], options) };
  }
  if (analysis.issues.length > 0) {
    return {
      ok: false,
      error: new DnaValidationError(analysis.issues, { source: options.source, subprogramName: (i) => subprogramLabel(dna, i) }),
    };
  }
  return { ok: true, dna, analysis };
}

/** `validateDna`, throwing the DnaValidationError. */
export function assertValidDna(value: unknown, options: ValidateOptions = {}): { dna: Dna; analysis: DnaAnalysis } {
  const r = validateDna(value, options);
  if (!r.ok) throw r.error;
  return r;
}

function lineAndColumn(text: string, position: number): { line: number; column: number } {
  let line = 1;
  let column = 1;
  for (let i = 0; i < position && i < text.length; i++) {
    if (text[i] === '\n') {
      line++;
      column = 1;
    } else {
      column++;
    }
  }
  return { line, column };
}

/** JSON text of a DNA file -> a validated DNA. Throws DnaParseError or DnaValidationError. */
export function parseDna(text: string, options: ValidateOptions = {}): { dna: Dna; analysis: DnaAnalysis } {
  const value = parseJson(text, options.source);
  return assertValidDna(value, options);
}

/**
 * JSON text -> value; bad JSON throws a DnaParseError with line and column (always: where
 * the engine's message has no position, the first error jsonc-parser finds gives it). A
 * UTF-8 byte-order mark, which some editors write, is skipped.
 */
export function parseJson(text: string, source?: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return JSON.parse(body);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const located = locateJsonError(body);
    const m = /position (\d+)/.exec(message);
    const pos = m ? Number(m[1]) : (located?.offset ?? (/end of JSON input/.test(message) ? body.length : 0));
    const at = lineAndColumn(body, pos);
    // V8 quotes the whole text in some messages ("... is not valid JSON"): say what is wrong, not the text
    const what = located?.what ?? message.replace(/ in JSON at position \d+.*$/s, '').replace(/, ".*" is not valid JSON$/s, '');
    throw new DnaParseError(what, { source, ...at, cause: e });
  }
}

/** The first syntax error in `text` and its offset, as jsonc-parser reports it (comments and trailing commas count as errors). */
function locateJsonError(text: string): { offset: number; what: string } | undefined {
  const errors: ParseError[] = [];
  parseJsonc(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
  const first = errors[0];
  if (!first) return undefined;
  const near = text.slice(first.offset, first.offset + Math.max(1, Math.min(first.length, 20)));
  const code = printParseErrorCode(first.error);
  return { offset: first.offset, what: `${JSON_ERRORS[code] ?? code}${near ? ` at ${JSON.stringify(near)}` : ''}` };
}

/** jsonc-parser's error codes in words. */
const JSON_ERRORS: Record<string, string> = {
  InvalidSymbol: 'unexpected character',
  InvalidNumberFormat: 'not a JSON number',
  PropertyNameExpected: 'expected a property name in double quotes (a trailing comma?)',
  ValueExpected: 'expected a value (a trailing comma?)',
  ColonExpected: "expected ':'",
  CommaExpected: "expected ','",
  CloseBraceExpected: "expected '}'",
  CloseBracketExpected: "expected ']'",
  EndOfFileExpected: 'unexpected text after the end of the JSON value',
  InvalidCommentToken: 'comments are not allowed in JSON',
  UnexpectedEndOfComment: 'an unterminated comment',
  UnexpectedEndOfString: 'an unterminated string',
  UnexpectedEndOfNumber: 'an unterminated number',
  InvalidUnicode: 'a bad \\u escape',
  InvalidEscapeCharacter: 'a bad escape character',
  InvalidCharacter: 'a control character inside a string',
};
