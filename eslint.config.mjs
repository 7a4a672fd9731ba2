// ESLint flat config: typescript-eslint's recommended rules with type information (the project service picks the
// nearest tsconfig.json: the root one, processor/ or packages/processor-config), eslint-config-prettier to leave
// layout to Prettier, and max-len for what Prettier cannot wrap (strings, comments). `npm run lint` fails on any
// warning (--max-warnings 0).
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/',
      '**/build/',
      '**/dist/',
      'coverage/',
      '.cdk8s-imports/',
      'processor/generated/',
      'packages/processor-config/require.d.ts',
    ],
  },
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: { ...globals.node },
    },
    rules: {
      // tsc already reports unused locals and parameters (noUnusedLocals, noUnusedParameters); this keeps the
      // `_name` convention for parameters an interface requires and for rest siblings that drop a property.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
    },
  },
  {
    // Scripts and jest configs in plain JavaScript are in no tsconfig: lint them without type information.
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    files: ['**/*.cjs', '**/jest.config.js', 'jest.preset.js', 'test/support/summary-reporter.js'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Tests read synthesized manifests, parsed JSON and protocol messages as loosely typed data and assert on their
    // shape; typing every path would add casts, not safety. Jest's expect(obj.method) and async callbacks that
    // satisfy an interface without awaiting are the idioms these rules would flag.
    files: ['test/**', 'processor/test/**', '**/*.test.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/require-await': 'off',
    },
  },
  prettier,
  {
    // After eslint-config-prettier, which turns max-len off: Prettier wraps code at 120 but not strings or comments.
    rules: {
      'max-len': ['error', { code: 120, tabWidth: 2, ignoreUrls: true, ignoreRegExpLiterals: true }],
    },
  },
);
