// ESLint flat config: type-aware rules for the whole TypeScript tree, plus the import
// boundaries from DESIGN.md (nothing in sdk/ imports onnxruntime-web; sdk/ imports workers/
// for types only; workers/ never import the SDK's main-thread client).
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // examples/ are users' apps: compiled against the installed tarball by e2e/consumers/example.spec.ts.
  { ignores: ['node_modules/', 'dist/', 'public/', 'models/recipes/', 'workers/kernels/assembly/', 'test-results/', 'playwright-report/', 'examples/', '**/*.js', '**/*.mjs'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
    },
  },
  {
    files: ['sdk/**/*.ts'],
    ignores: ['sdk/cli/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'onnxruntime-web', message: 'sdk/ runs on the main thread: onnxruntime-web belongs in workers/ort.' },
            { name: 'onnxruntime-web/wasm', message: 'sdk/ runs on the main thread: onnxruntime-web belongs in workers/ort.' },
            { name: 'onnxruntime-web/webgpu', message: 'sdk/ runs on the main thread: onnxruntime-web belongs in workers/ort.' },
          ],
          patterns: [
            { group: ['**/workers/**'], allowTypeImports: true, message: 'sdk/ may import workers/ for types only; workers run in workers.' },
          ],
        },
      ],
    },
  },
  {
    // Demos, e2e pages and benchmark pages consume Whittle as an app does: through 'whittle' only.
    files: ['demos/**/*.ts', 'e2e/pages/**/*.ts', 'bench/pages/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/sdk/**', '**/workers/**', '**/core/**'], message: "import the package's public entry: from 'whittle'." }] }],
    },
  },
  {
    // models/reference/ holds plain-TypeScript forward passes that tests use as independent
    // oracles: production code in core/, sdk/, workers/ and models/ never imports them (static,
    // dynamic or re-export). Tests, the oracles themselves and test support (**/testing/) may.
    // (no-restricted-syntax rather than no-restricted-imports: the latter is already configured
    // per layer below, and a second config of the same rule would replace it, not add to it.
    // \u002F is '/', which esquery's regex literals cannot contain.)
    files: ['core/**/*.ts', 'sdk/**/*.ts', 'workers/**/*.ts', 'models/**/*.ts'],
    ignores: ['**/*.test.ts', 'models/reference/**', '**/testing/**'],
    rules: {
      'no-restricted-syntax': ['error', {
        selector: ':matches(ImportDeclaration, ImportExpression, ExportNamedDeclaration, ExportAllDeclaration)[source.value=/(^|\\u002F)reference\\u002F/]',
        message: 'models/reference/ is the test oracle: production code must not import it.',
      }],
    },
  },
  {
    // core/ is the ground floor: every layer may import it, it imports no layer.
    files: ['core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/sdk/**', '**/workers/**', '**/models/**', 'onnxruntime-web', 'onnxruntime-web/*'], message: 'core/ is the ground floor and imports no other layer.' }] }],
    },
  },
  {
    files: ['workers/**/*.ts', 'models/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/sdk/client/**', '**/sdk/store/**', '**/sdk/whittle*', '**/sdk/index*'], message: 'workers/ and models/ must not pull in the main-thread SDK.' },
          ],
        },
      ],
    },
  },
  {
    files: ['models/**/*.ts'],
    ignores: ['models/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['onnxruntime-web', 'onnxruntime-web/*'], message: 'models/ builds graphs; only workers/ort runs them.' },
            { group: ['**/sdk/**', '**/workers/**'], message: 'models/ is below workers/ and sdk/: it imports only core/ and itself.' },
          ],
        },
      ],
    },
  },
);
