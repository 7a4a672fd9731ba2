/**
 * The Pod Security Standard "restricted" profile (Kubernetes pod-security admission, policy version latest),
 * checked on the pod template of a workload manifest. Returns one message per violation.
 */
const ALLOWED_VOLUME_TYPES = new Set([
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
]);

export function podSecurityProblems(podSpec: any): string[] {
  const problems: string[] = [];
  const pod = podSpec.securityContext ?? {};
  if (podSpec.hostNetwork || podSpec.hostPID || podSpec.hostIPC) problems.push('host namespaces are not allowed');
  for (const volume of podSpec.volumes ?? []) {
    const type = Object.keys(volume).find((k) => k !== 'name');
    if (!type || !ALLOWED_VOLUME_TYPES.has(type)) problems.push(`volume ${volume.name}: type ${type} is not allowed`);
  }
  if (pod.runAsUser === 0) problems.push('pod runAsUser must not be 0');
  if (pod.seccompProfile && !['RuntimeDefault', 'Localhost'].includes(pod.seccompProfile.type))
    problems.push('pod seccompProfile must be RuntimeDefault or Localhost');
  const containers = [...(podSpec.initContainers ?? []), ...(podSpec.containers ?? [])];
  for (const container of containers) {
    const sc = container.securityContext ?? {};
    const where = `container ${container.name}`;
    if (sc.privileged) problems.push(`${where}: privileged`);
    if (sc.allowPrivilegeEscalation !== false) problems.push(`${where}: allowPrivilegeEscalation must be false`);
    if ((sc.runAsNonRoot ?? pod.runAsNonRoot) !== true) problems.push(`${where}: runAsNonRoot must be true`);
    if (sc.runAsUser === 0) problems.push(`${where}: runAsUser must not be 0`);
    const drops: string[] = sc.capabilities?.drop ?? [];
    if (!drops.includes('ALL')) problems.push(`${where}: capabilities must drop ALL`);
    const adds: string[] = sc.capabilities?.add ?? [];
    if (adds.some((c) => c !== 'NET_BIND_SERVICE')) problems.push(`${where}: only NET_BIND_SERVICE may be added`);
    const seccomp = sc.seccompProfile?.type ?? pod.seccompProfile?.type;
    if (!['RuntimeDefault', 'Localhost'].includes(seccomp))
      problems.push(`${where}: seccompProfile must be RuntimeDefault or Localhost`);
    for (const port of container.ports ?? []) if (port.hostPort) problems.push(`${where}: hostPort is not allowed`);
  }
  return problems;
}
