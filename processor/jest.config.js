const preset = require('../jest.preset');

module.exports = {
  ...preset,
  displayName: 'processor',
  rootDir: '.',
  testMatch: ['<rootDir>/test/**/*.test.ts'],
};
