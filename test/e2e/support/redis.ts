/**
 * Reads the rate-limit counters a run left in Redis (envoyproxy/ratelimit keys: `<domain>_<key>_<value>_..._<window>`).
 */
import Redis from 'ioredis';

export interface Counter {
  key: string;
  value: number;
}

/** Every counter whose key contains `fragment` (SCAN, bounded). */
export async function countersContaining(redisUrl: string, fragment: string): Promise<Counter[]> {
  const client = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await client.scan(
        cursor,
        'MATCH',
        `*${fragment.replace(/[*?[\]\\]/g, '\\$&')}*`,
        'COUNT',
        500,
      );
      keys.push(...batch);
      cursor = next;
      if (keys.length > 10_000) throw new Error(`more than 10000 keys contain ${fragment}`);
    } while (cursor !== '0');
    const values = keys.length > 0 ? await client.mget(...keys) : [];
    return keys.map((key, i) => ({ key, value: Number(values[i]) })).sort((a, b) => a.key.localeCompare(b.key));
  } finally {
    client.disconnect();
  }
}
