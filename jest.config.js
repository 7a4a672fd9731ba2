/** One jest run covers the construct library and the processor workspace. */
module.exports = {
  projects: ['<rootDir>/test/jest.config.js', '<rootDir>/processor/jest.config.js'],
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
};
