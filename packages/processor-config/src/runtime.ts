/**
 * The V8 options the processor runs with, passed before its bundle by everything that starts it: the image's
 * entrypoint (processor/Dockerfile, checked by a test), the local data plane, and the benchmarks (for our processor
 * and the null processor alike, so their ratios compare code on one runtime).
 *
 * `--initial-old-space-size=64`: V8 counts the ArrayBuffers allocated since the last full collection against the old
 * generation's limit, and that limit starts just above the live heap. Every request body gRPC receives is such an
 * allocation, so with the processor's 14 MB or so of live heap (config, code, metrics) a stream of 1 MB bodies set off
 * a full collection every few dozen requests, while a process a few megabytes smaller stays below the point where V8
 * starts marking at all (docs/benchmarks.md A.8). The limit starts at 64 MB instead: memory the processor may fill
 * with garbage before collecting it, well inside the Deployment's default limit of 512 MiB; it reserves no memory
 * and lowers no ceiling. Node refuses this option in `NODE_OPTIONS`: it has to be on the command line.
 */
export const PROCESSOR_NODE_OPTIONS: readonly string[] = Object.freeze(['--initial-old-space-size=64']);
