/**
 * Wires the processor together: config + secrets (with hot reload), the ext_proc gRPC server, the admin
 * server, and graceful draining.
 */
import type * as grpc from '@grpc/grpc-js';
import type * as http from 'node:http';
import { Counter, Gauge } from 'prom-client';
import { createAdminServer } from './admin';
import { SecretReader } from './auth/secrets';
import { splitHostPort } from './cli';
import { readConfigFile } from './config/load';
import { compileRuntime, type CompileOptions, type RuntimeConfig } from './config/runtime';
import { IncompleteConfigBundleError, type ProcessorConfig } from '@ai-gateway-constructs/processor-config';
import { watchForChanges, type ChangeWatcher } from './config/watch';
import { extProcCodecs } from './grpc/codec';
import { loadProtoRoot } from './grpc/descriptor';
import {
  bindServer,
  createGrpcServer,
  DEFAULT_DRAIN_IDLE_MS,
  DEFAULT_STREAM_IDLE_TIMEOUT_MS,
  HealthStatus,
  StreamLifecycle,
} from './grpc/server';
import type { Logger } from './log';
import { HttpEgress, type HttpEgressOptions } from './fallback';
import { Metrics } from './metrics';
import { Processor } from './processor';
import { createTracer, type RequestTracer, type TracingOptions } from './tracing';

export interface AppOptions {
  config: string;
  /**
   * The config already read from `config` (main waits for a complete config set before it builds the app); default:
   * read now, throwing when it is invalid or incomplete.
   */
  initialConfig?: ProcessorConfig;
  secretsDir: string | undefined;
  /** `host:port` or `unix:/path`. */
  listen: string;
  /** `host:port`; undefined: no admin server. */
  admin: string | undefined;
  pollIntervalMs: number;
  logger: Logger;
  defaultMetrics?: boolean;
  compile?: Omit<CompileOptions, 'nowSeconds'>;
  /**
   * The stuck-stream watchdog: a stream with no message for this long is closed as cancelled (0: never). Default 300 s.
   */
  streamIdleTimeoutMs?: number;
  /**
   * While draining, a stream stuck on the processor's side (a message unanswered, or answers its peer does not
   * read) this long is closed too, so drains finish. Default 5 s.
   */
  drainIdleMs?: number;
  /** Request tracing over OTLP/HTTP; default: off (the OpenTelemetry SDK is not even loaded). */
  tracing?: TracingOptions;
  /** How the processor sends fallback attempts (development overrides); default: to each backend's endpoint. */
  egress?: HttpEgressOptions;
}

/** The least time spans queued at shutdown get to reach the collector, even when the drain used up its deadline. */
export const MIN_SPAN_FLUSH_MS = 1000;

export class ProcessorApp {
  readonly metrics: Metrics;
  readonly processor: Processor;
  readonly health = new HealthStatus();
  /** Undefined when tracing is off. */
  readonly tracer: RequestTracer | undefined;
  private readonly egress: HttpEgress;
  private grpcServer: grpc.Server | undefined;
  private adminServer: http.Server | undefined;
  private watcher: ChangeWatcher | undefined;
  private lastGoodConfig: ProcessorConfig;
  /** Set while a hot reload waits for the parts of a config set: the retry, and whether the wait was logged. */
  private incompleteRetry: NodeJS.Timeout | undefined;
  private waitingForConfigSet = false;
  private draining = false;
  private stopping = false;
  private endDelay: (() => void) | undefined;
  private readonly lifecycle: StreamLifecycle;
  /** Promise rejections nobody handled (logged and counted by main; the process keeps serving). */
  readonly unhandledRejections: Counter;
  listenPort = 0;
  adminPort = 0;

  /** Loads the config once; throws ProcessorConfigError when it is invalid. */
  constructor(private readonly options: AppOptions) {
    this.metrics = new Metrics({ defaultMetrics: options.defaultMetrics });
    this.lastGoodConfig = options.initialConfig ?? readConfigFile(options.config);
    this.tracer = options.tracing ? createTracer(options.tracing) : undefined;
    const tracer = this.tracer;
    if (tracer) this.metrics.reportLostSpans(() => tracer.lostSpans());
    this.egress = new HttpEgress(options.egress);
    this.processor = new Processor(
      this.compile(this.lastGoodConfig),
      this.metrics,
      options.logger,
      undefined,
      this.tracer,
      this.egress,
    );
    const registers = [this.metrics.registry];
    const processor = this.processor;
    new Gauge({
      name: 'ai_gateway_active_streams',
      help: 'ext_proc streams (sessions) currently open.',
      registers,
      collect() {
        this.set(processor.activeStreams);
      },
    });
    new Gauge({
      name: 'ai_gateway_backend_circuit_open',
      help:
        "1 while the processor's circuit breaker for a backend is open (its priority's traffic moves to the next " +
        'priority), else 0; one series per backend of the current config.',
      labelNames: ['gen_ai_provider_name'],
      registers,
      collect() {
        const runtime = processor.runtime();
        this.reset();
        for (const backend of runtime.config.backends) {
          const open = processor.breakers.isOpen(backend.name, runtime.config.circuitBreaker);
          this.set({ gen_ai_provider_name: backend.name }, open ? 1 : 0);
        }
      },
    });
    const expired = new Counter({
      name: 'ai_gateway_streams_expired_total',
      help:
        'ext_proc streams the stuck-stream watchdog closed (no message for the idle limit, or for ' +
        'the drain idle limit while draining).',
      registers,
    });
    this.unhandledRejections = new Counter({
      name: 'ai_gateway_unhandled_rejections_total',
      help: 'Promise rejections no code handled (each is logged; the processor keeps serving).',
      registers,
    });
    this.lifecycle = new StreamLifecycle({
      idleTimeoutMs: options.streamIdleTimeoutMs ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS,
      drainIdleMs: options.drainIdleMs ?? DEFAULT_DRAIN_IDLE_MS,
      onExpired: () => expired.inc(),
    });
  }

  private compile(config: ProcessorConfig): RuntimeConfig {
    return compileRuntime(config, new SecretReader(this.options.secretsDir), {
      logger: this.options.logger,
      ...this.options.compile,
      nowSeconds: Math.floor(Date.now() / 1000),
    });
  }

  async start(): Promise<void> {
    const server = createGrpcServer(this.processor, extProcCodecs(loadProtoRoot()), this.health, {
      lifecycle: this.lifecycle,
    });
    this.grpcServer = server;
    this.listenPort = await bindServer(server, this.options.listen);
    if (this.options.admin !== undefined) {
      const admin = createAdminServer({
        ready: () => this.health.isServing,
        credentials: () => this.processor.runtime(),
        registry: this.metrics.registry,
      });
      this.adminServer = admin;
      const { host, port } = splitHostPort(this.options.admin);
      await new Promise<void>((resolve, reject) => {
        admin.once('error', reject);
        admin.listen(port, host, () => resolve());
      });
      const address = admin.address();
      this.adminPort = typeof address === 'object' && address ? address.port : port;
    }
    this.watcher = watchForChanges(
      { configFile: this.options.config, secretsDir: this.options.secretsDir },
      (changed) => this.reload(changed),
      { pollIntervalMs: this.options.pollIntervalMs },
    );
    this.health.set(true);
  }

  /**
   * Re-reads the config (when it changed) and rebuilds the snapshot with fresh secrets. A config set whose parts are
   * not all there yet (its ConfigMaps still updating) keeps the last good config and is retried every poll interval.
   */
  reload(changed: { config: boolean; secrets: boolean }): boolean {
    const logger = this.options.logger;
    if (this.incompleteRetry !== undefined) {
      clearTimeout(this.incompleteRetry);
      this.incompleteRetry = undefined;
    }
    // While a config set is incomplete, every reload (a secrets change too) reads the config again: the retry it
    // replaces was for the config.
    const configChanged = changed.config || this.waitingForConfigSet;
    let config = this.lastGoodConfig;
    try {
      if (configChanged) config = readConfigFile(this.options.config);
      const runtime = this.compile(config);
      this.lastGoodConfig = config;
      this.processor.swap(runtime);
      this.waitingForConfigSet = false;
      this.metrics.configReloads.inc({ result: 'success' });
      logger.info(
        {
          config: configChanged,
          secrets: changed.secrets,
          backends: config.backends.length,
          routes: config.routes.length,
        },
        'configuration reloaded',
      );
      return true;
    } catch (error) {
      if (error instanceof IncompleteConfigBundleError) {
        this.metrics.configReloads.inc({ result: 'incomplete' });
        if (!this.waitingForConfigSet) {
          this.waitingForConfigSet = true;
          logger.warn(
            { revision: error.revision, missing: error.missing },
            'waiting for a complete config set; the last good one keeps serving',
          );
        }
        if (!this.draining) {
          this.incompleteRetry = setTimeout(
            () => this.reload({ config: true, secrets: changed.secrets }),
            this.options.pollIntervalMs,
          );
          this.incompleteRetry.unref();
        }
        return false;
      }
      this.metrics.configReloads.inc({ result: 'rejected' });
      logger.error({ err: (error as Error).message }, 'new configuration rejected; the last good one keeps serving');
      return false;
    }
  }

  /** Whether a hot reload is waiting for the parts of a config set (the last good config keeps serving). */
  get isWaitingForConfigSet(): boolean {
    return this.waitingForConfigSet;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Whether a shutdown began (readiness is 503 from then on). */
  get isStopping(): boolean {
    return this.stopping;
  }

  /**
   * Kubernetes-style shutdown: readiness (and gRPC health) report not serving at once, while the listener stays
   * open and new streams are still accepted for `delayMs` (the endpoint's removal reaches every Envoy meanwhile);
   * then `drain(drainTimeoutMs)`. `onDrain` runs when the drain begins. Resolves with whether the drain completed.
   */
  async shutdown(delayMs: number, drainTimeoutMs: number, onDrain?: () => void): Promise<boolean> {
    this.stopping = true;
    this.health.set(false);
    if (delayMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delayMs);
        this.endDelay = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.endDelay = undefined;
    }
    onDrain?.();
    return this.drain(drainTimeoutMs);
  }

  /** Ends a running shutdown delay now (a second signal); the drain starts at once. */
  skipShutdownDelay(): void {
    this.endDelay?.();
  }

  /**
   * Stops accepting new streams, lets in-flight ones finish until the deadline (streams stuck on our side for the
   * drain idle limit are closed as cancelled meanwhile), then closes everything. Resolves as soon as every stream is
   * done,
   * with whether the drain completed before the deadline.
   */
  async drain(deadlineMs: number): Promise<boolean> {
    const deadline = performance.now() + deadlineMs;
    this.draining = true;
    this.stopping = true;
    this.health.shutdown();
    this.watcher?.close();
    if (this.incompleteRetry !== undefined) clearTimeout(this.incompleteRetry);
    const server = this.grpcServer;
    let completed = true;
    if (server) {
      this.lifecycle.startDraining();
      completed = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          this.lifecycle.expireAll();
          server.forceShutdown();
          resolve(false);
        }, deadlineMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve(true);
        });
      });
    }
    this.lifecycle.stop();
    this.egress.close();
    // The spans of the requests just drained go out with what is left of the drain's time (bounded below, so a drain
    // that used it all still sends the last batch).
    await this.tracer?.shutdown(Math.max(MIN_SPAN_FLUSH_MS, deadline - performance.now()));
    await new Promise<void>((resolve) => (this.adminServer ? this.adminServer.close(() => resolve()) : resolve()));
    this.adminServer?.closeAllConnections();
    return completed;
  }
}

/**
 * What a log line may say about an unexpected error: its class, message and stack frames, never the error's other
 * properties (an HTTP client's error carries the request config, with its Authorization header).
 */
export function describeError(error: unknown): { type: string; message: string; stack?: string[] } {
  if (!(error instanceof Error))
    return { type: typeof error, message: truncate(typeof error === 'string' ? error : 'a non-Error value') };
  const frames = (error.stack ?? '')
    .split('\n')
    .filter((line) => line.trimStart().startsWith('at '))
    .slice(0, 12)
    .map((line) => line.trim());
  return { type: error.name, message: truncate(error.message), ...(frames.length > 0 ? { stack: frames } : {}) };
}

function truncate(text: string): string {
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}
