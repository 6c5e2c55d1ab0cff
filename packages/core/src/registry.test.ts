import { describe, expect, it } from 'vitest';
import { DuplicateKeyError, InvalidEntryError, UnknownKeyError } from './errors.js';
import { createRegistry } from './registry.js';

type Known = 'ADD' | 'MULTIPLY';
const make = () => {
  const r = createRegistry<Known, { arity: number }>('primitive', {
    validate: (_name, e) => (e.arity < 1 ? 'arity must be at least 1' : undefined),
  });
  r.register('ADD', { arity: 2 });
  r.register('MULTIPLY', { arity: 2 });
  return r;
};

describe('createRegistry', () => {
  it('lists, gets and tests entries in registration order', () => {
    const r = make();
    r.register('my-plugin-op', { arity: 1 }); // any string compiles
    expect(r.names()).toEqual(['ADD', 'MULTIPLY', 'my-plugin-op']);
    expect(r.get('ADD')).toEqual({ arity: 2 });
    expect(r.has('MULTIPLY')).toBe(true);
    expect(r.has('SUB')).toBe(false);
    expect(r.list().map((x) => x.name)).toEqual(r.names());
  });

  it('refuses duplicates unless overridden', () => {
    const r = make();
    expect(() => r.register('ADD', { arity: 2 })).toThrow(DuplicateKeyError);
    expect(() => r.register('ADD', { arity: 2 })).toThrow(/primitive "ADD" is already registered/);
    r.register('ADD', { arity: 3 }, { override: true });
    expect(r.get('ADD').arity).toBe(3);
  });

  it('names the registry, the key and close matches when a key is unknown', () => {
    const r = make();
    let err: unknown;
    try {
      r.get('MULTPLY');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnknownKeyError);
    const u = err as UnknownKeyError;
    expect(u.registry).toBe('primitive');
    expect(u.key).toBe('MULTPLY');
    expect(u.suggestions).toEqual(['MULTIPLY']);
    expect(u.message).toBe('Unknown primitive "MULTPLY". Did you mean "MULTIPLY"?');
    expect(r.suggest('add')).toEqual(['ADD']);
    expect(() => r.get('zzzzzzzz')).toThrow(/Known: ADD, MULTIPLY/);
  });

  it('runs the entry validator and reports its reason', () => {
    const r = make();
    expect(() => r.register('BAD', { arity: 0 })).toThrow(InvalidEntryError);
    expect(() => r.register('BAD', { arity: 0 })).toThrow('Cannot register primitive "BAD": arity must be at least 1');
    expect(r.has('BAD')).toBe(false);
    expect(() => r.register('', { arity: 1 })).toThrow(InvalidEntryError);
  });

  it('unregisters', () => {
    const r = make();
    expect(r.unregister('ADD')).toBe(true);
    expect(r.unregister('ADD')).toBe(false);
    expect(r.names()).toEqual(['MULTIPLY']);
  });
});
