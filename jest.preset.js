/** Shared jest settings: TypeScript through swc (type checking is `npm run typecheck`). */
const path = require('node:path');

module.exports = {
  testEnvironment: 'node',
  transform: {
    '^.+\\.(t|j)s$': [
      require.resolve('@swc/jest'),
      {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
        module: { type: 'commonjs' },
      },
    ],
  },
  // Workspace packages run from their sources, like tsconfig.json's `paths`: no build needed before jest.
  moduleNameMapper: {
    '^@ai-gateway-constructs/processor-config$': path.join(__dirname, 'packages/processor-config/src/index.ts'),
  },
  transformIgnorePatterns: ['/node_modules/(?!(@bufbuild/cel|jose)/)'],
};
