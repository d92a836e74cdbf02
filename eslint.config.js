// ESLint flat config: type-aware rules for the whole TypeScript tree, plus the import
// boundaries from DESIGN.md (nothing in sdk/ imports onnxruntime-web; sdk/ imports workers/
// for types only; workers/ never import the SDK's main-thread client).
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'public/', 'models/recipes/', 'test-results/', 'playwright-report/', '**/*.js', '**/*.mjs'] },
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
      'no-restricted-imports': ['error', { patterns: [{ group: ['onnxruntime-web', 'onnxruntime-web/*'], message: 'models/ builds graphs; only workers/ort runs them.' }] }],
    },
  },
);
