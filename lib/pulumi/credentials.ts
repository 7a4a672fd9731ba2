/**
 * Credentials whose secret value comes from Pulumi (config secrets, a secrets manager, another stack). The
 * component that uses them creates the Kubernetes Secret itself, with the value kept secret in Pulumi state,
 * and hands the construct model only the reference (Secret name and key), as the cdk8s constructs expect.
 */
import * as pulumi from '@pulumi/pulumi';
import { Credentials, type AwsSharedCredentialsOptions, type SecretKeyReference } from '../credentials';

/** A Secret the component creates from a Pulumi value. */
export interface ManagedSecretProps {
  /** The secret value (use `config.requireSecret(...)` or `pulumi.secret(...)`; it is made secret regardless). */
  readonly value: pulumi.Input<string>;
  /** Name of the Secret to create. */
  readonly secretName: string;
  /**
   * Key inside the Secret.
   * @default "api-key" (bearerToken: "token", AWS: "credentials", GCP: "service-account.json")
   */
  readonly key?: string;
  /**
   * Namespace of the Secret; the processor mounts it, so it must be the processor's namespace.
   * @default - the namespace of the ProviderBackend
   */
  readonly namespace?: pulumi.Input<string>;
}

type ManagedKind = 'apiKey' | 'bearerToken' | 'awsSharedCredentials' | 'gcpServiceAccountKey';

const DEFAULT_KEYS: Readonly<Record<ManagedKind, string>> = {
  apiKey: 'api-key',
  bearerToken: 'token',
  awsSharedCredentials: 'credentials',
  gcpServiceAccountKey: 'service-account.json',
};

/**
 * Credentials backed by a Secret the Pulumi component creates (see `Credentials` for references to existing Secrets).
 */
export class ManagedCredentials {
  /** A static API key (OpenAI: `Authorization: Bearer`, Anthropic: `x-api-key`, Azure: `api-key`). */
  static apiKey(secret: ManagedSecretProps): ManagedCredentials {
    return new ManagedCredentials('apiKey', secret);
  }

  /** `Authorization: Bearer <value>`. */
  static bearerToken(secret: ManagedSecretProps): ManagedCredentials {
    return new ManagedCredentials('bearerToken', secret);
  }

  /** An AWS shared-credentials file (INI) as the value; signs requests with SigV4. */
  static awsSharedCredentials(
    secret: ManagedSecretProps,
    options: AwsSharedCredentialsOptions = {},
  ): ManagedCredentials {
    return new ManagedCredentials('awsSharedCredentials', secret, options);
  }

  /** A GCP service-account JSON key as the value. */
  static gcpServiceAccountKey(secret: ManagedSecretProps): ManagedCredentials {
    return new ManagedCredentials('gcpServiceAccountKey', secret);
  }

  private constructor(
    private readonly kind: ManagedKind,
    readonly secret: ManagedSecretProps,
    private readonly options: AwsSharedCredentialsOptions = {},
  ) {}

  /** The Secret key the value is stored under. */
  get key(): string {
    return this.secret.key ?? DEFAULT_KEYS[this.kind];
  }

  /** @internal the reference the construct model gets once the namespace is resolved. */
  _toCredentials(reference: SecretKeyReference): Credentials {
    switch (this.kind) {
      case 'apiKey':
        return Credentials.apiKey(reference);
      case 'bearerToken':
        return Credentials.bearerToken(reference);
      case 'awsSharedCredentials':
        return Credentials.awsSharedCredentials(reference, this.options);
      case 'gcpServiceAccountKey':
        return Credentials.gcpServiceAccountKey(reference);
    }
  }
}
