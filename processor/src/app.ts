/**
 * Wires the processor together: config + secrets (with hot reload), the ext_proc gRPC server, the admin
 * server, and graceful draining.
 */
import type * as grpc from '@grpc/grpc-js';
import type * as http from 'node:http';
import { createAdminServer } from './admin';
import { SecretReader } from './auth/secrets';
import { splitHostPort } from './cli';
import { readConfigFile } from './config/load';
import { compileRuntime, type CompileOptions, type RuntimeConfig } from './config/runtime';
import type { ProcessorConfig } from './config/schema';
import { watchForChanges, type ChangeWatcher } from './config/watch';
import { extProcCodecs } from './grpc/codec';
import { loadProtoRoot } from './grpc/descriptor';
import { bindServer, createGrpcServer, HealthStatus } from './grpc/server';
import type { Logger } from './log';
import { Metrics } from './metrics';
import { Processor } from './processor';

export interface AppOptions {
  config: string;
  secretsDir: string | undefined;
  /** `host:port` or `unix:/path`. */
  listen: string;
  /** `host:port`; undefined: no admin server. */
  admin: string | undefined;
  pollIntervalMs: number;
  logger: Logger;
  defaultMetrics?: boolean;
  compile?: Omit<CompileOptions, 'nowSeconds'>;
}

export class ProcessorApp {
  readonly metrics: Metrics;
  readonly processor: Processor;
  readonly health = new HealthStatus();
  private grpcServer: grpc.Server | undefined;
  private adminServer: http.Server | undefined;
  private watcher: ChangeWatcher | undefined;
  private lastGoodConfig: ProcessorConfig;
  private draining = false;
  listenPort = 0;
  adminPort = 0;

  /** Loads the config once; throws ProcessorConfigError when it is invalid. */
  constructor(private readonly options: AppOptions) {
    this.metrics = new Metrics({ defaultMetrics: options.defaultMetrics });
    this.lastGoodConfig = readConfigFile(options.config);
    this.processor = new Processor(this.compile(this.lastGoodConfig), this.metrics, options.logger);
  }

  private compile(config: ProcessorConfig): RuntimeConfig {
    return compileRuntime(config, new SecretReader(this.options.secretsDir), {
      ...this.options.compile,
      nowSeconds: Math.floor(Date.now() / 1000),
    });
  }

  async start(): Promise<void> {
    const server = createGrpcServer(this.processor, extProcCodecs(loadProtoRoot()), this.health);
    this.grpcServer = server;
    this.listenPort = await bindServer(server, this.options.listen);
    if (this.options.admin !== undefined) {
      const admin = createAdminServer({ ready: () => this.health.isServing, registry: this.metrics.registry });
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

  /** Re-reads the config (when it changed) and rebuilds the snapshot with fresh secrets. */
  reload(changed: { config: boolean; secrets: boolean }): boolean {
    const logger = this.options.logger;
    let config = this.lastGoodConfig;
    try {
      if (changed.config) config = readConfigFile(this.options.config);
      const runtime = this.compile(config);
      this.lastGoodConfig = config;
      this.processor.swap(runtime);
      this.metrics.configReloads.inc({ result: 'success' });
      logger.info({ config: changed.config, secrets: changed.secrets, backends: config.backends.length, routes: config.routes.length }, 'configuration reloaded');
      return true;
    } catch (error) {
      this.metrics.configReloads.inc({ result: 'rejected' });
      logger.error({ err: (error as Error).message }, 'new configuration rejected; the last good one keeps serving');
      return false;
    }
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * Stops accepting new streams, lets in-flight ones finish until the deadline, then closes everything.
   * Resolves with whether the drain completed before the deadline.
   */
  async drain(deadlineMs: number): Promise<boolean> {
    this.draining = true;
    this.health.set(false);
    this.watcher?.close();
    const server = this.grpcServer;
    let completed = true;
    if (server) {
      completed = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve(false);
        }, deadlineMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve(true);
        });
      });
    }
    await new Promise<void>((resolve) => (this.adminServer ? this.adminServer.close(() => resolve()) : resolve()));
    this.adminServer?.closeAllConnections();
    return completed;
  }
}
