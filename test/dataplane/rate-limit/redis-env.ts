/**
 * The Redis the counting tests run against: REDIS_URL. Unset, the Redis tests skip with a printed reason, except
 * under CI (`CI=true`), where a missing Redis is a failure (.ci/run starts one and exports REDIS_URL).
 */
export function redisUrlForTests(): string | undefined {
  const url = process.env.REDIS_URL;
  if (url) return url;
  const reason = 'REDIS_URL is not set, so the rate-limit counting tests against a real Redis are skipped';
  if (process.env.CI === 'true' || process.env.CI === '1') throw new Error(`${reason}; CI must provide a Redis`);
  process.stdout.write(`SKIPPED: ${reason} (start one, e.g. redis-server --port 6390, and set REDIS_URL=redis://127.0.0.1:6390)\n`);
  return undefined;
}
