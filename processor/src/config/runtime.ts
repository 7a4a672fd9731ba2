/**
 * A loaded config compiled for the request path: router, backends with their authenticators and parsed
 * mutations, compiled costs. Immutable; hot reload swaps the whole snapshot.
 */
import { createAuthenticator, type AuthFactories, type BackendAuthenticator } from '../auth';
import type { SecretReader } from '../auth/secrets';
import { HeaderOptionCache } from '../extproc/header-options';
import { RequestAnswerCache } from '../extproc/request-answers';
import { Router } from '../routing/router';
import type { TranslatorTable } from '../translate/registry';
import { compileCost, type CompiledCost } from '../usage/costs';
import { UsageMetadata } from '../usage/metadata';
import { ProcessorConfigError, type BackendConfig, type ProcessorConfig } from './schema';

/** Headers Envoy's default mutation rules ignore: the route owns them. */
export function isIgnoredByEnvoy(name: string): boolean {
  return name === 'host' || name === ':authority' || name === ':scheme' || name === ':method' || name.startsWith('x-envoy-');
}

export interface BackendRuntime {
  config: BackendConfig;
  auth: BackendAuthenticator | undefined;
  setHeaders: ReadonlyArray<readonly [string, string]>;
  removeHeaders: readonly string[];
  bodySet: ReadonlyArray<readonly [string, unknown]>;
  bodyRemove: readonly string[];
  hasBodyMutation: boolean;
}

export interface RuntimeConfig {
  config: ProcessorConfig;
  router: Router;
  backends: ReadonlyMap<string, BackendRuntime>;
  /** Encodes the token counts and costs as Envoy dynamic metadata. */
  usageMetadata: UsageMetadata;
  /** Any cost configured: streaming OpenAI-schema requests ask for usage. */
  forceStreamUsage: boolean;
  /** Unix seconds of the load, reported as `created` by `/models`. */
  loadedAtSeconds: number;
  translators: TranslatorTable | undefined;
  /** Encoded request header options that repeat across requests (backend names, models, credentials). */
  headerOptions: HeaderOptionCache;
  /** Encoded request-body answers of requests forwarded unchanged. */
  requestAnswers: RequestAnswerCache;
}

export interface CompileOptions {
  nowSeconds: number;
  authFactories?: AuthFactories;
  translators?: TranslatorTable;
}

/** Throws ProcessorConfigError naming every problem (unsupported auth, CEL that does not compile, ...). */
export function compileRuntime(config: ProcessorConfig, secrets: SecretReader, options: CompileOptions): RuntimeConfig {
  const problems: string[] = [];
  const backends = new Map<string, BackendRuntime>();
  config.backends.forEach((backend, i) => {
    let auth: BackendAuthenticator | undefined;
    try {
      auth = createAuthenticator(backend, secrets, options.authFactories);
    } catch (error) {
      problems.push(`backends.${i}.auth: ${(error as Error).message}`);
    }
    const ignored = [...(backend.headerMutation?.set.map((h) => h.name) ?? []), ...(backend.headerMutation?.remove ?? [])].filter(
      isIgnoredByEnvoy,
    );
    if (ignored.length > 0) {
      problems.push(`backends.${i}.headerMutation: Envoy ignores changes to ${ignored.join(', ')}; the route sets them`);
    }
    backends.set(backend.name, {
      config: backend,
      auth,
      setHeaders: backend.headerMutation?.set.map((h) => [h.name, h.value] as const) ?? [],
      removeHeaders: backend.headerMutation?.remove ?? [],
      bodySet: backend.bodyMutation?.set.map((m) => [m.path, JSON.parse(m.value) as unknown] as const) ?? [],
      bodyRemove: backend.bodyMutation?.remove ?? [],
      hasBodyMutation: (backend.bodyMutation?.set.length ?? 0) + (backend.bodyMutation?.remove.length ?? 0) > 0,
    });
  });
  const costs: CompiledCost[] = [];
  config.costs.forEach((cost, i) => {
    try {
      costs.push(compileCost(cost));
    } catch (error) {
      problems.push(`costs.${i}.expression: ${(error as Error).message}`);
    }
  });
  if (problems.length > 0) throw new ProcessorConfigError(problems);
  return {
    config,
    router: new Router(config),
    backends,
    usageMetadata: new UsageMetadata(costs),
    forceStreamUsage: costs.length > 0,
    loadedAtSeconds: options.nowSeconds,
    translators: options.translators,
    headerOptions: new HeaderOptionCache(),
    requestAnswers: new RequestAnswerCache(),
  };
}
