import { PrimerError } from '@primer-search/core';

/** One problem in a DNA, located as precisely as we can. */
export interface DnaIssue {
  subprogram?: number;
  instruction?: number;
  field?: string;
  /** The chain of calls that led here, outermost first, e.g. "main h2 -> subprogram 3 h4". */
  calledFrom?: string;
  message: string;
}

export function formatIssue(issue: DnaIssue, subprogramName?: (i: number) => string): string {
  const where: string[] = [];
  if (issue.subprogram !== undefined) where.push(subprogramName ? subprogramName(issue.subprogram) : `subprogram ${issue.subprogram}`);
  if (issue.instruction !== undefined) where.push(`instruction ${issue.instruction}`);
  if (issue.field !== undefined) where.push(`field ${issue.field}`);
  const head = where.length ? `${where.join(', ')}: ` : '';
  return `${head}${issue.message}${issue.calledFrom ? ` (called from ${issue.calledFrom})` : ''}`;
}

/** The DNA is readable but not a valid program. `issues` lists every problem found. */
export class DnaValidationError extends PrimerError {
  readonly issues: DnaIssue[];
  readonly source: string | undefined;
  constructor(issues: DnaIssue[], options: { source?: string; subprogramName?: (i: number) => string } = {}) {
    const lines = issues.map((i) => formatIssue(i, options.subprogramName));
    const prefix = options.source ? `${options.source}: ` : '';
    const more = lines.length > 1 ? `\n${lines.slice(1).map((l) => `  also: ${l}`).join('\n')}` : '';
    super('DNA_INVALID', `${prefix}invalid DNA: ${lines[0] ?? 'unknown problem'}${more}`);
    this.issues = issues;
    this.source = options.source;
  }
}

/** The text is not JSON. `line` and `column` are 1-based. */
export class DnaParseError extends PrimerError {
  readonly line: number | undefined;
  readonly column: number | undefined;
  constructor(message: string, options: { source?: string; line?: number; column?: number; cause?: unknown }) {
    const at = options.line !== undefined ? `:${options.line}:${options.column ?? 1}` : '';
    super('DNA_PARSE', `${options.source ?? '<input>'}${at}: not valid JSON: ${message}`, { cause: options.cause });
    this.line = options.line;
    this.column = options.column;
  }
}

/** A mutation could not produce a child different from its parent. */
export class MutationError extends PrimerError {
  constructor(message: string) {
    super('MUTATION_FAILED', message);
  }
}
