/**
 * Benchmark-only diagnostics preload: `node --require bench/gc-stats.cjs ...` (with bodies.bench.ts through
 * BENCH_NODE_FLAGS and BENCH_NULL_NODE_FLAGS). At exit the process writes `<dir>/gc-<role>-<pid>.json`
 * (dir: $BENCH_GC_STATS_DIR, default the OS temp dir; role: `null` when an argument names the null processor,
 * else `ours`): the count and main-thread milliseconds of each kind of GC, the old generation after the last
 * mark-compact, how much the old generation grew between GCs (objects promoted or allocated there), and the most
 * external memory (ArrayBuffers) V8 accounted. Sizes are read when Node reports a GC, shortly after it, so they are
 * approximate. Counts do not depend on the machine's load the way CPU time does: compare major GCs per request
 * between two servers to see whether they run in the same GC regime.
 */
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const v8 = require('node:v8');
const perfHooks = require('node:perf_hooks');

const { constants } = perfHooks;

const KINDS = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};
const OLD_SPACES = new Set(['old_space', 'code_space', 'large_object_space', 'code_large_object_space']);

function oldGenerationBytes() {
  let bytes = 0;
  for (const space of v8.getHeapSpaceStatistics()) if (OLD_SPACES.has(space.space_name)) bytes += space.space_used_size;
  return bytes;
}

const kinds = {};
let lastOld = oldGenerationBytes();
let oldGrowth = 0;
let oldAfterMajor = 0;
let maxExternal = 0;

function record(entries) {
  for (const entry of entries) {
    const kind = KINDS[entry.detail.kind] ?? String(entry.detail.kind);
    const stats = (kinds[kind] ??= { count: 0, ms: 0 });
    stats.count += 1;
    stats.ms += entry.duration;
    const old = oldGenerationBytes();
    if (old > lastOld) oldGrowth += old - lastOld;
    lastOld = old;
    if (kind === 'major') oldAfterMajor = old;
    maxExternal = Math.max(maxExternal, v8.getHeapStatistics().external_memory);
  }
}

const observer = new perfHooks.PerformanceObserver((list) => record(list.getEntries()));
observer.observe({ entryTypes: ['gc'] });

const role = process.argv.some((arg) => path.basename(arg).startsWith('null')) ? 'null' : 'ours';
process.on('exit', () => {
  // GCs Node has not reported to the observer yet.
  record(observer.takeRecords());
  const mb = (bytes) => Number((bytes / 1e6).toFixed(2));
  const report = {
    role,
    kinds: Object.fromEntries(
      Object.entries(kinds).map(([kind, s]) => [kind, { count: s.count, ms: Number(s.ms.toFixed(1)) }]),
    ),
    oldGenerationAfterLastMajorMB: mb(oldAfterMajor),
    oldGenerationGrowthMB: mb(oldGrowth),
    maxExternalMemoryMB: mb(maxExternal),
  };
  const dir = process.env.BENCH_GC_STATS_DIR ?? os.tmpdir();
  fs.writeFileSync(path.join(dir, `gc-${role}-${process.pid}.json`), JSON.stringify(report));
});
