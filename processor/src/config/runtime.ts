/**
 * A loaded config compiled for the request path: router, backends with their authenticators and parsed
 * mutations, compiled costs. Immutable; hot reload swaps the whole snapshot.
 */
import {
  createAuthenticator,
  credentialProblem,
  failingAuthenticator,
  type AuthFactories,
  type BackendAuthenticator,
  type CredentialProblemError,
} from '../auth';
import type { SecretReader } from '../auth/secrets';
import { HeaderOptionCache } from '../extproc/header-options';
import { compileGovernance, type Governance } from '../governance';
import { RequestAnswerCache } from '../extproc/request-answers';
import type { Logger } from '../log';
import { Router } from '../routing/router';
import type { TranslatorTable } from '../translate/registry';
import { compileCost, type CompiledCost } from '../usage/costs';
import { UsageMetadata } from '../usage/metadata';
import {
  ProcessorConfigError,
  type BackendConfig,
  type ProcessorConfig,
} from '@ai-gateway-constructs/processor-config';

/** Headers Envoy's default mutation rules ignore: the route owns them. */
export function isIgnoredByEnvoy(name: string): boolean {
  return (
    name === 'host' || name === ':authority' || name === ':scheme' || name === ':method' || name.startsWith('x-envoy-')
  );
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

/** The backends whose credential cannot work in a snapshot. Names and Secret references only, never values. */
export interface CredentialStatus {
  /**
   * One entry per backend whose credential Secret is missing, empty or malformed, in config order, e.g.
   * `backend "openai": credential openai-key/apiKey is empty`. Requests to such a backend are answered 503
   * backend_auth_error (a failure for its circuit breaker) until a reload brings a fixed Secret.
   */
  readonly credentialProblems: readonly string[];
  /**
   * Every backend the routes use has a credential problem: the processor can serve nothing but 503s (`/readyz`
   * answers 503). False when there are no problems, or when some routed backend can still serve.
   */
  readonly noUsableBackend: boolean;
}

export interface RuntimeConfig extends CredentialStatus {
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
  /** Consumers, prices and budgets. */
  governance: Governance;
}

export interface CompileOptions {
  nowSeconds: number;
  authFactories?: AuthFactories;
  translators?: TranslatorTable;
  /**
   * Where each credential problem of a successfully compiled snapshot is logged, once (error level). Requests
   * that then fail on it carry a reported CredentialProblemError, which need not be logged again. Without a
   * logger nothing is logged here and those errors stay unreported.
   */
  logger?: Logger;
}

/** Throws ProcessorConfigError naming every problem (unsupported auth, CEL that does not compile, ...). */
export function compileRuntime(config: ProcessorConfig, secrets: SecretReader, options: CompileOptions): RuntimeConfig {
  const problems: string[] = [];
  const credentialErrors: CredentialProblemError[] = [];
  const backends = new Map<string, BackendRuntime>();
  config.backends.forEach((backend, i) => {
    let auth: BackendAuthenticator | undefined;
    try {
      auth = createAuthenticator(backend, secrets, options.authFactories);
    } catch (error) {
      problems.push(`backends.${i}.auth: ${(error as Error).message}`);
    }
    // A credential that cannot work is not a config error (the Secret may be fixed without a config change, and
    // the other backends keep serving): the backend fails every request at once with the one known error.
    const credential = credentialProblem(backend, auth);
    if (credential !== undefined) {
      credentialErrors.push(credential);
      auth = failingAuthenticator(credential);
    }
    const ignored = [
      ...(backend.headerMutation?.set.map((h) => h.name) ?? []),
      ...(backend.headerMutation?.remove ?? []),
    ].filter(isIgnoredByEnvoy);
    if (ignored.length > 0) {
      problems.push(
        `backends.${i}.headerMutation: Envoy ignores changes to ${ignored.join(', ')}; the route sets them`,
      );
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
  const governance = compileGovernance(config);
  const costs: CompiledCost[] = [];
  config.costs.forEach((cost, i) => {
    try {
      costs.push(compileCost(cost, governance.prices));
    } catch (error) {
      problems.push(`costs.${i}.${cost.type === 'CEL' ? 'expression' : 'type'}: ${(error as Error).message}`);
    }
  });
  if (problems.length > 0) throw new ProcessorConfigError(problems);
  const logger = options.logger;
  if (logger !== undefined) {
    for (const error of credentialErrors) {
      logger.error(
        { backend: error.backend, err: error.message },
        'backend credential unusable: its requests are answered 503 until the Secret is fixed ' +
          '(logged once per config load)',
      );
      error.reported = true;
    }
  }
  const broken = new Set(credentialErrors.map((error) => error.backend));
  const routed = new Set(
    config.routes.flatMap((route) => route.rules.flatMap((rule) => rule.backends.map((ref) => ref.backend))),
  );
  return {
    config,
    credentialProblems: credentialErrors.map((error) => error.message),
    noUsableBackend: broken.size > 0 && routed.size > 0 && [...routed].every((name) => broken.has(name)),
    router: new Router(config),
    backends,
    usageMetadata: new UsageMetadata(costs),
    forceStreamUsage: costs.length > 0,
    loadedAtSeconds: options.nowSeconds,
    translators: options.translators,
    headerOptions: new HeaderOptionCache(),
    requestAnswers: new RequestAnswerCache(),
    governance,
  };
}
