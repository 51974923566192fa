// ESLint flat config (typescript-eslint). `npm run lint`; CI runs it before the tests (.ci/run).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '**/*.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.{ts,mts,js,mjs}'],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        fetch: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        structuredClone: 'readonly',
        performance: 'readonly',
        queueMicrotask: 'readonly',
        setImmediate: 'readonly',
      },
    },
    rules: {
      // `_name` marks a value deliberately unused (a destructured key left out, a required parameter).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true, caughtErrors: 'none' },
      ],
      // Registries hold entries of different parameter types (Gate<any>, ProviderType<any>): `any` is the honest type there.
      '@typescript-eslint/no-explicit-any': 'off',
      // The code base uses `cond && (a, b)` / `((x = 1), (y = 2))` statement one-liners on purpose (the rule has no
      // option for sequence expressions); TypeScript's own checks catch the expressions that really do nothing.
      '@typescript-eslint/no-unused-expressions': 'off',
      // A `let` read by a closure before its one assignment (a server's handler that needs the object it builds).
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  {
    // Tests match terminal output, escape sequences included.
    files: ['test/**/*.ts'],
    rules: { 'no-control-regex': 'off' },
  },
);
