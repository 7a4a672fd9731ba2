import { AIGatewayValidationError } from '../../lib/errors';

/** Asserts that `fn` throws an error of `type` whose message is exactly `message` (not merely contains it). */
export function expectThrows(
  fn: () => unknown,
  message: string,
  type: new (...args: any[]) => Error = AIGatewayValidationError,
): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(type);
  expect((thrown as Error).message).toBe(message);
}
