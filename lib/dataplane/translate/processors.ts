/**
 * Processor Deployments in the manifests: a Deployment whose container runs with `--config <file>` read from a
 * ConfigMap volume, exposed by a Service whose selector matches its pods. The CLI starts one local process each.
 */
import * as path from 'node:path';
import type { KubeObject, ProcessorDeployment } from '../model';
import {
  asArray,
  asNumber,
  asObject,
  asObjects,
  asString,
  labelSelectorMatches,
  namespaceOf,
  nameOf,
  ObjectIndex,
  spec,
} from '../objects';
import { argValue } from '../processor-args';

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
    const configMapName = asString(asObject(configVolume?.configMap)?.name);
    if (!configMapName) continue;
    const configMap = index.get('ConfigMap', namespace, configMapName);
    const configJson = asString(asObject(configMap?.data)?.[path.posix.basename(configPath)]);
    if (configJson === undefined) {
      throw new Error(
        `processor Deployment ${namespace}/${nameOf(deployment)} reads ${configPath}, but ConfigMap ` +
          `${namespace}/${configMapName} has no key ${path.posix.basename(configPath)}`,
      );
    }
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
      configMapName,
      configJson,
      secretMounts,
    };
  }
  return undefined;
}

export function findProcessors(index: ObjectIndex): ProcessorDeployment[] {
  return index.all('Deployment').flatMap((d) => processorOf(index, d) ?? []);
}
