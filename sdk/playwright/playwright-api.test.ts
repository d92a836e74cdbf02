/**
 * `whittle/playwright`'s entry as a user reads it: every export carries TSDoc with an `@example`
 * (the same rule sdk/public-api.test.ts applies to the main entry).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { expect, it } from 'vitest';

const ENTRY = join(dirname(fileURLToPath(import.meta.url)), '../playwright.ts');

it('documents every export of whittle/playwright with an @example', () => {
  const program = ts.createProgram([ENTRY], {
    strict: true,
    noEmit: true,
    allowImportingTsExtensions: true,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    target: ts.ScriptTarget.ES2022,
    skipLibCheck: true,
  });
  const checker = program.getTypeChecker();
  const exports = checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(ENTRY)!)!);
  // Every declaration along the re-export chain counts: a re-exported third-party value (Playwright's
  // `expect`) is documented where this package re-exports it.
  const declarations = (s: ts.Symbol): ts.Node[] => {
    // (The entry's own export lines do not count: its file header would document its first one.)
    const here = (s.declarations ?? [])
      .filter((d) => !(ts.isExportSpecifier(d) && d.getSourceFile().fileName === ENTRY))
      .map((d) => (ts.isExportSpecifier(d) ? d.parent.parent : d));
    const next = s.flags & ts.SymbolFlags.Alias ? checker.getImmediateAliasedSymbol(s) : undefined;
    return next ? [...here, ...declarations(next)] : here;
  };
  const without = exports
    .filter((e) => !declarations(e).some((d) => ts.getJSDocTags(d).some((t) => t.tagName.text === 'example')))
    .map((e) => e.getName());
  expect(exports.length).toBeGreaterThan(15);
  expect(without, `exports without an @example:\n${without.join('\n')}`).toEqual([]);
}, 120_000);
