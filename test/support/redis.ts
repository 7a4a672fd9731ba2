/**
 * The Redis tests count against: REDIS_URL. Unset, the tests run without Redis (undefined) and, given what they
 * skip, say so; under CI (`CI=true`) a missing Redis is a failure, as .ci/run starts redis-server and exports
 * REDIS_URL.
 */
export function redisUrlForTests(skipped?: string): string | undefined {
  const url = process.env.REDIS_URL;
  if (url) return url;
  if (process.env.CI === 'true' || process.env.CI === '1') {
    throw new Error(
      'REDIS_URL is not set, but CI must provide a Redis (.ci/run starts redis-server and exports REDIS_URL)',
    );
  }
  if (skipped !== undefined) {
    process.stdout.write(
      `SKIPPED: REDIS_URL is not set, so ${skipped} are skipped (start one, e.g. redis-server --port 6390, and set REDIS_URL=redis://127.0.0.1:6390)\n`,
    );
  }
  return undefined;
}
