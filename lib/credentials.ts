import type { BackendAuth } from '@ai-gateway-constructs/processor-config';

/** A key of a Kubernetes Secret. The processor reads it from `<secrets-dir>/<secretName>/<key>`. */
export interface SecretKeyReference {
  /** Name of the Secret. */
  readonly secretName: string;
  /** Key inside the Secret. */
  readonly key: string;
  /**
   * Namespace of the Secret. Pods can only mount Secrets of their own namespace, so this must be the
   * processor's namespace (the gateway's, or the route's when the route attaches to an existing Gateway).
   * @default - the namespace of the ProviderBackend that uses it
   */
  readonly namespace?: string;
}

/** Which credentials shapes a provider accepts. */
export type CredentialKind =
  | 'APIKey'
  | 'BearerToken'
  | 'AWSSecret'
  | 'AWSDefaultChain'
  | 'GCPServiceAccountKey'
  | 'GCPWorkloadIdentity'
  | 'AzureEntra';

/** Options of AWS credentials. */
export interface AwsCredentialsOptions {
  /**
   * Accept per-request credentials in `x-aigw-aws-access-key-id` / `x-aigw-aws-secret-access-key` /
   * `x-aigw-aws-session-token` (always stripped before the upstream), falling back to these credentials.
   * @default false
   */
  readonly perRequestCredentials?: boolean;
}

/** Options of an AWS shared-credentials file in a Secret. */
export interface AwsSharedCredentialsOptions extends AwsCredentialsOptions {
  /**
   * Profile to read from the credentials file.
   * @default "default"
   */
  readonly profile?: string;
}

/** Azure Entra ID client-credentials settings. */
export interface AzureEntraOptions {
  readonly tenantId: string;
  readonly clientId: string;
  /** Where the client secret is stored. */
  readonly clientSecret: SecretKeyReference;
}

/**
 * How the processor authenticates to a provider. Credentials are only ever references to Secrets (or ambient
 * identities); no secret value passes through the constructs.
 */
export class Credentials {
  /** A static API key (OpenAI: `Authorization: Bearer`, Anthropic: `x-api-key`, Azure: `api-key`). */
  static apiKey(secret: SecretKeyReference): Credentials {
    return new Credentials('APIKey', [secret], () => ({ type: 'APIKey', secret: fileRef(secret) }));
  }

  /** `Authorization: Bearer <file content>`, for tokens another component refreshes in the Secret. */
  static bearerToken(secret: SecretKeyReference): Credentials {
    return new Credentials('BearerToken', [secret], () => ({ type: 'BearerToken', secret: fileRef(secret) }));
  }

  /** An AWS shared-credentials file (INI) stored in a Secret key; signs requests with SigV4. */
  static awsSharedCredentials(secret: SecretKeyReference, options: AwsSharedCredentialsOptions = {}): Credentials {
    return new Credentials('AWSSecret', [secret], (region) => ({
      type: 'AWSSigV4',
      region: region ?? '',
      credentials: { source: 'Secret', secret: fileRef(secret), profile: options.profile ?? 'default' },
      perRequestCredentials: options.perRequestCredentials ?? false,
    }));
  }

  /**
   * The AWS default credential chain: IRSA (annotate the processor ServiceAccount with
   * `eks.amazonaws.com/role-arn`), EKS pod identity, environment or instance metadata.
   */
  static awsDefaultChain(options: AwsCredentialsOptions = {}): Credentials {
    return new Credentials('AWSDefaultChain', [], (region) => ({
      type: 'AWSSigV4',
      region: region ?? '',
      credentials: { source: 'DefaultChain' },
      perRequestCredentials: options.perRequestCredentials ?? false,
    }));
  }

  /** A GCP service-account JSON key stored in a Secret key. */
  static gcpServiceAccountKey(secret: SecretKeyReference): Credentials {
    return new Credentials('GCPServiceAccountKey', [secret], () => ({
      type: 'GCP',
      credentials: { source: 'ServiceAccountKey', secret: fileRef(secret) },
    }));
  }

  /**
   * GCP application default credentials, e.g. GKE workload identity (annotate the processor ServiceAccount
   * with `iam.gke.io/gcp-service-account`).
   */
  static gcpWorkloadIdentity(): Credentials {
    return new Credentials('GCPWorkloadIdentity', [], () => ({
      type: 'GCP',
      credentials: { source: 'WorkloadIdentity' },
    }));
  }

  /** Azure Entra ID client credentials (scope `https://cognitiveservices.azure.com/.default`). */
  static azureEntra(options: AzureEntraOptions): Credentials {
    return new Credentials('AzureEntra', [options.clientSecret], () => ({
      type: 'AzureEntra',
      tenantId: options.tenantId,
      clientId: options.clientId,
      clientSecret: fileRef(options.clientSecret),
    }));
  }

  private constructor(
    /** The shape of these credentials. */
    readonly kind: CredentialKind,
    /** The Secret keys the processor must mount. */
    readonly secrets: readonly SecretKeyReference[],
    private readonly render: (region: string | undefined) => BackendAuth,
  ) {}

  /** @internal the processor config `auth` entry; `region` is the AWS signing region. */
  _toConfig(region?: string): BackendAuth {
    return this.render(region);
  }
}

function fileRef(secret: SecretKeyReference): { secretName: string; key: string } {
  return { secretName: secret.secretName, key: secret.key };
}
