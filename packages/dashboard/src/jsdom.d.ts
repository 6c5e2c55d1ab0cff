// The part of jsdom the report uses (jsdom ships no types; @types/jsdom follows a newer major).
declare module 'jsdom' {
  export class JSDOM {
    constructor(html: string);
    window: { document: unknown };
  }
}
