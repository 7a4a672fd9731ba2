/**
 * Benchmark-only preload (`node --expose-gc --require bench/gc-hook.cjs ...`) for both servers: on SIGUSR2
 * run a full GC and write process.memoryUsage() to $BENCH_MEMORY_FILE, so memory per open stream is
 * measured without garbage that simply has not been collected yet.
 */
'use strict';
const fs = require('node:fs');

process.on('SIGUSR2', () => {
  global.gc();
  global.gc();
  fs.writeFileSync(process.env.BENCH_MEMORY_FILE, JSON.stringify(process.memoryUsage()));
});
