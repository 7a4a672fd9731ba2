/**
 * Processor Deployments in the manifests: a Deployment whose container runs with `--config <file>` read from a
 * ConfigMap volume, exposed by a Service whose selector matches its pods. The CLI starts one local process each.
 */
import * as path from 'node:path';
import {
  decodeConfigBundle,
  isConfigBundleManifest,
  parseConfigBundleManifest,
  type ConfigBundleManifest,
} from '@ai-gateway-constructs/processor-config';
import type { KubeObject, ProcessorDeployment } from '../model';
import {
  asArray,
  asNumber,
  asObject,
  asObjects,
  asString,
  configMapKeyProblem,
  labelSelectorMatches,
  namespaceOf,
  nameOf,
  ObjectIndex,
  spec,
} from '../objects';
import { argValue } from '../processor-args';
import { NODE_BUNDLE_CODEC } from '../../config-bundle-codec';

/** The ConfigMaps of a config volume: one (`configMap`), or the sources of a `projected` volume. */
function configVolumeSources(volume: KubeObject | Record<string, unknown> | undefined): string[] {
  const single = asString(asObject(volume?.configMap)?.name);
  if (single !== undefined) return [single];
  return asObjects(asObject(volume?.projected)?.sources).flatMap((source) => {
    const name = asString(asObject(source.configMap)?.name);
    return name !== undefined ? [name] : [];
  });
}

/** The bundle manifest `text` is, or undefined for a plain config (or text that is no JSON at all). */
function bundleManifestOf(text: string): ConfigBundleManifest | undefined {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    return undefined;
  }
  return isConfigBundleManifest(document) ? parseConfigBundleManifest(document) : undefined;
}

/** The config.json of a bundle, from the files of its ConfigMaps, checked as the processor checks it. */
function decodeBundle(where: string, manifest: ConfigBundleManifest, files: ReadonlyMap<string, Uint8Array>): string {
  try {
    const json = decodeConfigBundle(manifest, (key) => files.get(key), NODE_BUNDLE_CODEC);
    return Buffer.from(json.buffer, json.byteOffset, json.length).toString('utf8');
  } catch (error) {
    throw new Error(`${where}: its config ConfigMaps do not hold a usable config set: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

function processorOf(index: ObjectIndex, deployment: KubeObject): ProcessorDeployment | undefined {
  const namespace = namespaceOf(deployment);
  const template = asObject(spec(deployment).template) ?? {};
  const podSpec = asObject(template.spec) ?? {};
  const podLabels = (asObject(asObject(template.metadata)?.labels) ?? {}) as Record<string, string>;
  const volumes = asObjects(podSpec.volumes);
  for (const container of asObjects(podSpec.containers)) {
    const args = asArray(container.args).map(String);
    const configPath = argValue(args, '--config');
    if (!configPath) continue;
    const mounts = asObjects(container.volumeMounts);
    const configMount = mounts.find((m) => asString(m.mountPath) === path.posix.dirname(configPath));
    const configVolume = volumes.find((v) => v.name === configMount?.name);
    const configMapNames = configVolumeSources(configVolume);
    if (configMapNames.length === 0) continue;
    const where = `processor Deployment ${namespace}/${nameOf(deployment)}`;
    const files = new Map<string, Uint8Array>();
    for (const name of configMapNames) {
      const configMap = index.get('ConfigMap', namespace, name);
      const data = asObject(configMap?.data) ?? {};
      const binaryData = asObject(configMap?.binaryData) ?? {};
      // Each key becomes a file of the config volume, which the CLI writes into a folder of its own.
      for (const key of [...Object.keys(data), ...Object.keys(binaryData)]) {
        const problem = configMapKeyProblem(key);
        if (problem !== undefined) {
          throw new Error(
            `${where}: ConfigMap ${namespace}/${name} of its config volume has the key ${JSON.stringify(key)}, ` +
              `which is not a valid ConfigMap key: ${problem}`,
          );
        }
      }
      for (const [key, value] of Object.entries(data)) {
        if (typeof value === 'string') files.set(key, Buffer.from(value));
      }
      for (const [key, value] of Object.entries(binaryData)) {
        if (typeof value === 'string') files.set(key, Buffer.from(value, 'base64'));
      }
    }
    const configFileName = path.posix.basename(configPath);
    const configFile = files.get(configFileName);
    if (configFile === undefined) {
      throw new Error(
        `${where} reads ${configPath}, but ${configMapNames.length === 1 ? 'ConfigMap' : 'the ConfigMaps'} ` +
          `${configMapNames.map((name) => `${namespace}/${name}`).join(', ')} ` +
          `${configMapNames.length === 1 ? 'has' : 'have'} no key ${configFileName}`,
      );
    }
    const configText = Buffer.from(configFile).toString('utf8');
    const bundle = bundleManifestOf(configText);
    const configJson = bundle === undefined ? configText : decodeBundle(where, bundle, files);
    const listenPort = Number((argValue(args, '--listen') ?? '').split(':').pop());
    const service = index
      .all('Service')
      .filter((s) => namespaceOf(s) === namespace && asObject(spec(s).selector))
      .find((s) => labelSelectorMatches({ matchLabels: spec(s).selector }, podLabels));
    if (!service)
      throw new Error(`processor Deployment ${namespace}/${nameOf(deployment)} has no Service selecting its pods`);
    const ports = asObjects(spec(service).ports);
    const port =
      ports.find((p) => asNumber(p.targetPort) === listenPort) ?? ports.find((p) => p.name === 'grpc') ?? ports[0];
    const secretMounts = mounts.flatMap((mount) => {
      const secret = asObject(volumes.find((v) => v.name === mount.name)?.secret);
      const secretName = asString(secret?.secretName);
      if (!secretName) return [];
      const items = asObjects(secret?.items).map((i) => ({ key: asString(i.key) ?? '', path: asString(i.path) ?? '' }));
      return [{ secretName, mountPath: asString(mount.mountPath) ?? '', ...(items.length > 0 ? { items } : {}) }];
    });
    return {
      namespace,
      deploymentName: nameOf(deployment),
      serviceName: nameOf(service),
      servicePort: asNumber(port?.port) ?? listenPort,
      args,
      configMapName: configMapNames[0],
      configJson,
      ...(bundle !== undefined ? { configFiles: Object.fromEntries(files), configFileName } : {}),
      secretMounts,
    };
  }
  return undefined;
}

export function findProcessors(index: ObjectIndex): ProcessorDeployment[] {
  return index.all('Deployment').flatMap((d) => processorOf(index, d) ?? []);
}
