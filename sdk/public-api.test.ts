/**
 * The public API as a person reads it: everything is reachable from `sdk/index.ts`.
 *
 * 1. Every named type that appears in a public signature of an export (parameters, returns,
 *    properties, type arguments, base types) is itself exported from the entry, so a user can
 *    name it: found by walking the checker's types, not the source text, so inferred types count.
 * 2. Every export carries TSDoc with an `@example`.
 * 3. A consumer file that imports and uses every export compiles under `--strict`.
 *
 * Members marked `@internal` (and private/protected ones) are not public and are not walked.
 */
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const ENTRY = join(ROOT, 'sdk/index.ts');
const CONSUMER = join(ROOT, 'e2e/consumers/uses-every-export.ts');

/**
 * Exports still without an `@example`, by the file that declares them (files other work owns
 * while this list was written). The test fails when one of these gains its example (so the
 * list only shrinks) and for any other export without one.
 */
const EXAMPLE_PENDING = new Set<string>([
  // sdk/text-model.ts and the text types it re-exports (core/text-types.ts, workers/text/)
  ...['TextModelInfo', 'PruneOptions', 'PruneResult', 'CalibrateExitsOptions', 'ExitChoice', 'ExitProfile', 'StepCost'],
]);

/**
 * What a consumer's `tsc --strict --noEmit` would use: no Node or Vite types. Against the built
 * package's declarations the same file is compiled by e2e/consumers/apps.spec.ts.
 */
const CONSUMER_OPTIONS: ts.CompilerOptions = {
  strict: true,
  noEmit: true,
  noUnusedLocals: true, // an import the consumer file never uses is an error: "uses every export"
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  lib: ['lib.es2023.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'],
  types: [],
  allowImportingTsExtensions: true,
  skipLibCheck: true,
  // The consumer imports 'whittle' as an app does; here that is the source entry (as in tsconfig.json).
  paths: { whittle: [join(ROOT, 'sdk/index.ts')] },
};

let program: ts.Program;
let checker: ts.TypeChecker;
let exports: ts.Symbol[];

const resolveAlias = (s: ts.Symbol): ts.Symbol => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
const isInternal = (decl: ts.Node): boolean => ts.getJSDocTags(decl).some((t) => t.tagName.text === 'internal');
const isHidden = (decl: ts.Declaration): boolean =>
  isInternal(decl) ||
  (ts.getCombinedModifierFlags(decl) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) !== 0 ||
  ((ts.isPropertyDeclaration(decl) || ts.isMethodDeclaration(decl)) && ts.isPrivateIdentifier(decl.name));

/** Declared in this repository's sources (not TypeScript's lib, not a dependency). */
const isOurs = (s: ts.Symbol): boolean => (s.declarations ?? []).some((d) => !d.getSourceFile().fileName.includes('/node_modules/'));
/** Inside `declare global { ... }`: a global, even when the file is a module. */
const inGlobalAugmentation = (d: ts.Node): boolean => {
  for (let n: ts.Node | undefined = d.parent; n; n = n.parent) if (ts.isModuleDeclaration(n) && (n.flags & ts.NodeFlags.GlobalAugmentation) !== 0) return true;
  return false;
};
/**
 * Declared as an export of a dependency's module: a type a user would have to import from that
 * package. Globals (the DOM lib, `declare global`) are everyone's and fine.
 */
const isThirdPartyModule = (s: ts.Symbol): boolean => {
  const declarations = s.declarations ?? [];
  if (declarations.some((d) => program.isSourceFileDefaultLibrary(d.getSourceFile()) || inGlobalAugmentation(d))) return false;
  return declarations.some((d) => d.getSourceFile().fileName.includes('/node_modules/') && ts.isExternalModule(d.getSourceFile()));
};

interface Finding {
  name: string;
  declaredIn: string;
  via: string;
}

/** Named types reachable from the public signatures of the entry's exports that the entry does not export. */
function unexportedTypes(): Finding[] {
  const exported = new Set(exports.map(resolveAlias));
  const missing = new Map<ts.Symbol, Finding>();
  const seen = new Set<ts.Type>();
  const walkedNamed = new Set<ts.Symbol>();

  const note = (symbol: ts.Symbol, via: string): void => {
    if (exported.has(symbol) || missing.has(symbol)) return;
    if (isOurs(symbol) || isThirdPartyModule(symbol)) {
      const file = symbol.declarations?.[0]?.getSourceFile().fileName ?? '?';
      missing.set(symbol, { name: symbol.getName(), declaredIn: relative(ROOT, file), via });
    }
  };

  const visitSignature = (sig: ts.Signature, via: string): void => {
    if (sig.declaration && ts.isFunctionLike(sig.declaration) && isHidden(sig.declaration as ts.Declaration)) return;
    for (const tp of sig.getTypeParameters() ?? []) {
      const constraint = tp.getConstraint();
      if (constraint) visit(constraint, via);
    }
    for (const p of sig.getParameters()) visit(checker.getTypeOfSymbol(p), `${via}(${p.getName()})`);
    visit(checker.getReturnTypeOfSignature(sig), `${via}()`);
  };

  const visitMembers = (type: ts.Type, via: string, skip: (name: string) => boolean = () => false): void => {
    for (const prop of checker.getPropertiesOfType(type)) {
      if (skip(prop.getName()) || prop.getName().startsWith('__')) continue;
      if ((prop.declarations ?? []).some(isHidden)) continue;
      visit(checker.getTypeOfSymbol(prop), `${via}.${prop.getName()}`);
    }
    for (const kind of [ts.SignatureKind.Call, ts.SignatureKind.Construct]) {
      for (const sig of checker.getSignaturesOfType(type, kind)) visitSignature(sig, via);
    }
    for (const info of checker.getIndexInfosOfType(type)) visit(info.type, `${via}[]`);
  };

  function visit(type: ts.Type, via: string): void {
    if (seen.has(type)) return;
    seen.add(type);
    if (type.flags & ts.TypeFlags.TypeParameter) return;
    const alias = type.aliasSymbol;
    if (alias) {
      for (const arg of type.aliasTypeArguments ?? []) visit(arg, `${via}<>`);
      // A library alias (Record, Partial, Readonly...) is named by its arguments, not its structure.
      if (!isOurs(alias)) return;
      note(alias, via);
    }
    if (type.isUnionOrIntersection()) {
      for (const t of type.types) visit(t, via);
      return;
    }
    if (!(type.flags & ts.TypeFlags.Object)) return;
    const object = type as ts.ObjectType;
    let named = type.getSymbol();
    if (object.objectFlags & ts.ObjectFlags.Reference) {
      for (const arg of checker.getTypeArguments(type as ts.TypeReference)) visit(arg, `${via}<>`);
      named = (type as ts.TypeReference).target.getSymbol() ?? named;
    }
    const isNamed = named !== undefined && (named.flags & (ts.SymbolFlags.Class | ts.SymbolFlags.Interface | ts.SymbolFlags.Enum)) !== 0;
    if (isNamed && named) {
      if (!isOurs(named)) {
        note(named, via); // a dependency's type in a public signature; lib types are fine
        return;
      }
      note(named, via);
      if (walkedNamed.has(named) && !(object.objectFlags & ts.ObjectFlags.Reference)) return;
      walkedNamed.add(named);
      for (const base of checker.getBaseTypes(checker.getDeclaredTypeOfSymbol(named) as ts.InterfaceType)) visit(base, `${named.getName()} extends`);
      visitMembers(type, named.getName());
      return;
    }
    visitMembers(type, via);
  }

  for (const exp of exports) {
    const symbol = resolveAlias(exp);
    const name = exp.getName();
    if (symbol.flags & ts.SymbolFlags.Class) {
      walkedNamed.add(symbol);
      const instance = checker.getDeclaredTypeOfSymbol(symbol);
      for (const base of checker.getBaseTypes(instance as ts.InterfaceType)) visit(base, `${name} extends`);
      visitMembers(instance, name);
      // The static side: static members and a public constructor.
      visitMembers(checker.getTypeOfSymbol(symbol), name, (member) => member === 'prototype');
    } else if (symbol.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias | ts.SymbolFlags.Enum)) {
      visit(checker.getDeclaredTypeOfSymbol(symbol), name);
    }
    if (symbol.flags & (ts.SymbolFlags.Function | ts.SymbolFlags.Variable)) visit(checker.getTypeOfSymbol(symbol), name);
  }
  return [...missing.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** Exports whose declaration has no TSDoc `@example`. */
function exportsWithoutExample(): string[] {
  return exports
    .filter((exp) => {
      const declarations = resolveAlias(exp).declarations ?? [];
      return !declarations.some((d) => ts.getJSDocTags(d).some((t) => t.tagName.text === 'example'));
    })
    .map((exp) => exp.getName())
    .sort();
}

beforeAll(() => {
  program = ts.createProgram([ENTRY, CONSUMER], CONSUMER_OPTIONS);
  checker = program.getTypeChecker();
  const entry = program.getSourceFile(ENTRY);
  const moduleSymbol = entry && checker.getSymbolAtLocation(entry);
  if (!moduleSymbol) throw new Error('sdk/index.ts did not load');
  exports = checker.getExportsOfModule(moduleSymbol);
}, 120_000);

describe('public API of sdk/index.ts', () => {
  it('exports every named type its public signatures use', () => {
    const missing = unexportedTypes().map((f) => `${f.name} (declared in ${f.declaredIn}; used by ${f.via})`);
    expect(missing, `types used in public signatures but not exported from sdk/index.ts:\n${missing.join('\n')}`).toEqual([]);
  });

  it('documents every export with an @example', () => {
    const without = exportsWithoutExample();
    const unexpected = without.filter((n) => !EXAMPLE_PENDING.has(n));
    expect(unexpected, `exports without a TSDoc @example:\n${unexpected.join('\n')}`).toEqual([]);
    const nowDocumented = [...EXAMPLE_PENDING].filter((n) => !without.includes(n));
    expect(nowDocumented, 'documented now: remove from EXAMPLE_PENDING').toEqual([]);
  });

  it('does not export the internal zero-block HeadModel', () => {
    expect(exports.map((e) => e.getName())).not.toContain('HeadModel');
  });

  it('compiles a consumer that uses every export under --strict', () => {
    const consumer = program.getSourceFile(CONSUMER);
    if (!consumer) throw new Error(`${CONSUMER} is missing`);
    const imported = new Set<string>();
    for (const statement of consumer.statements) {
      if (!ts.isImportDeclaration(statement) || !ts.isStringLiteral(statement.moduleSpecifier)) continue;
      if (statement.moduleSpecifier.text !== 'whittle') throw new Error(`the consumer imports ${statement.moduleSpecifier.text}: only the entry is public`);
      const bindings = statement.importClause?.namedBindings;
      if (bindings && ts.isNamedImports(bindings)) for (const el of bindings.elements) imported.add((el.propertyName ?? el.name).text);
    }
    const notImported = exports.map((e) => e.getName()).filter((n) => !imported.has(n));
    expect(notImported, 'exports the consumer file does not import').toEqual([]);
    // The consumer's own file: the SDK's sources are checked by the repository's stricter tsc, and
    // a consumer of the built package sees declarations, not their bodies.
    const diagnostics = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics(), ...ts.getPreEmitDiagnostics(program, consumer)].map((d) => {
      const where = d.file ? `${relative(ROOT, d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}: ` : '';
      return where + ts.flattenDiagnosticMessageText(d.messageText, '\n');
    });
    expect(diagnostics, diagnostics.join('\n')).toEqual([]);
  });
});
