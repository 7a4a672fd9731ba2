const preset = require('../jest.preset');

module.exports = {
  ...preset,
  displayName: 'constructs',
  rootDir: '..',
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // @pulumi/pulumi keeps its runtime store on the global object by design; jest's soft cleanup of globals
  // between files only produces deprecation noise for it.
  testEnvironmentOptions: { globalsCleanup: 'off' },
};
