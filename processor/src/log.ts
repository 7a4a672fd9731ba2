import pino from 'pino';

/** The logging surface the processor uses (pino-compatible). Never pass credentials or bodies. */
export interface Logger {
  error(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
  debug(fields: object, message: string): void;
}

/** JSON logs to stderr (stdout carries only the ready line); no worker-thread transports, so it bundles. */
export function createLogger(level: string): Logger {
  return pino(
    {
      level,
      base: { service: 'ai-gateway-processor' },
      redact: { paths: ['headers.authorization', 'headers["x-api-key"]', 'headers["api-key"]'], censor: '[redacted]' },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}

export const silentLogger: Logger = { error() {}, warn() {}, info() {}, debug() {} };
