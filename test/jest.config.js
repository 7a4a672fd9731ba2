const preset = require('../jest.preset');

module.exports = {
  ...preset,
  displayName: 'constructs',
  rootDir: '..',
  testMatch: ['<rootDir>/test/**/*.test.ts'],
};
