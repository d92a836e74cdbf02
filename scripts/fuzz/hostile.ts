/**
 * Values that break parsers: integers at the edges of int32/uint32/uint64/2^53, negative,
 * fractional, non-finite, and strings that break names and paths. Shared by the byte and JSON
 * mutators and the structure-aware generators.
 */
import { int, pick, type Rng } from './rand.ts';

/** Numbers a JS caller (or JSON.parse, for the finite ones and ±1e999 -> ±Infinity) can hand over. */
export const HOSTILE_NUMBERS: readonly number[] = [
  0,
  -0,
  1,
  -1,
  2,
  3,
  7,
  0.5,
  -0.5,
  1.5,
  1e-300,
  255,
  256,
  65535,
  65536,
  0x7fffffff,
  0x80000000,
  -0x80000000,
  0xffffffff,
  2 ** 32,
  2 ** 40,
  2 ** 53 - 1,
  2 ** 53,
  2 ** 53 + 2,
  2 ** 63,
  2 ** 64,
  1e18,
  1e21,
  1e300,
  -1e300,
  Number.MAX_VALUE,
  Infinity,
  -Infinity,
  NaN,
];

/** Numeric literals as JSON text: what only a hostile file can say (JSON.parse turns 1e999 into Infinity). */
export const HOSTILE_NUMBER_LITERALS: readonly string[] = [
  '0',
  '-0',
  '1',
  '-1',
  '0.5',
  '1e999',
  '-1e999',
  '1e308',
  '9007199254740993',
  '18446744073709551616',
  '4294967296',
  '2147483648',
  '-2147483649',
  '1e-400',
  '123456789012345678901234567890',
  '1E3',
  '1.0',
  '65536',
  '1099511627776',
];

/** 32-bit patterns for binary headers (int32/uint32 fields and offsets). */
export const HOSTILE_U32: readonly number[] = [
  0, 1, 2, 3, 4, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0x80000001, 0xfffffffe, 0xffffffff, 0x40000000,
  0x3fffffff, 0x1000000,
];

/** Strings that break names, paths, URLs, Unicode handling and regexes. */
export const HOSTILE_STRINGS: readonly string[] = [
  '',
  ' ',
  '..',
  '../x',
  '/abs',
  'a/../b',
  'a//b',
  './a',
  'a\\..\\b',
  '%2e%2e/x',
  'C:\\x',
  'http://evil.example/x',
  '//evil/x',
  'a?x=1',
  'a#b',
  '\u0000',
  'nul\u0000byte',
  '\ud800',
  '\udfff\ud800',
  'e\u0301',
  '\u202eRTL',
  '\u200b',
  '💥',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  'ﬁ',
  'İ',
  '\r\n',
  '\\u0000',
  '{{ x }}',
  '{% for %}',
  '__proto__',
  'constructor',
  'toString',
  'NaN',
  'Infinity',
  '-1',
  '0x10',
  'true',
  'null',
];

export function hostileNumber(rng: Rng): number {
  return pick(rng, HOSTILE_NUMBERS);
}

/** A long string of a repeated hostile unit (up to `max` characters). */
export function longString(rng: Rng, max: number): string {
  const unit = pick(rng, ['a', 'é', '💥', '\u0301', '..', '/', ' ', '\ud800']);
  return unit.repeat(Math.max(1, Math.floor(int(rng, 1, max) / unit.length)));
}

export function hostileString(rng: Rng): string {
  return rng() < 0.9 ? pick(rng, HOSTILE_STRINGS) : longString(rng, 100_000);
}
