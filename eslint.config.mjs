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
      // An async function or generator that satisfies a Promise or AsyncIterable signature without awaiting is
      // intended (in-memory stores, one-chunk bodies); no-floating-promises and no-misused-promises cover the hazards.
      '@typescript-eslint/require-await': 'off',
      // Error messages quote user-supplied values of unknown type with String(value) on purpose.
      '@typescript-eslint/no-base-to-string': 'off',
      // require() is kept where a module loads lazily (cloud auth SDKs, CEL, re2js, the protobuf descriptor) or a
      // jest test loads a module after setting up its mocks; everything else uses import.
      '@typescript-eslint/no-require-imports': 'off',
      // Handlers that forward a rejection unchanged pass on whatever was thrown.
      '@typescript-eslint/prefer-promise-reject-errors': [
        'error',
        { allowThrowingUnknown: true, allowThrowingAny: true },
      ],
      // A `let` that a closure declared earlier reads (an exit handler) is assigned once, later: not a const.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
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
  },
  {
    // Tests read synthesized manifests, parsed JSON and protocol messages as loosely typed data and assert on their
    // shape; typing every path would add casts, not safety. unbound-method: jest's expect(obj.method) idiom.
    files: ['test/**', 'processor/test/**', '**/*.test.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/unbound-method': 'off',
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
