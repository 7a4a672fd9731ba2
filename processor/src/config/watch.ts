/**
 * Watches the config file and the secrets directory for changes. Kubernetes updates ConfigMap and Secret
 * volumes by swapping a `..data` symlink, so the parent directories are watched (fs.watch) and, as a
 * fallback for file systems without events, their fingerprints are polled.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface WatchTargets {
  configFile: string;
  secretsDir?: string;
}

export interface Fingerprints {
  config: string;
  secrets: string;
}

function statPrint(file: string): string {
  try {
    const real = fs.realpathSync(file);
    const stat = fs.statSync(real);
    return `${real}:${stat.size}:${stat.mtimeMs}:${stat.ino}`;
  } catch {
    return `${file}:missing`;
  }
}

/** Real paths, sizes and mtimes of every `<secret>/<key>` file (dot entries like `..data` are skipped). */
function secretsPrint(dir: string | undefined): string {
  if (dir === undefined) return '';
  const parts: string[] = [];
  let secrets: string[];
  try {
    secrets = fs
      .readdirSync(dir)
      .filter((name) => !name.startsWith('.'))
      .sort();
  } catch {
    return 'missing';
  }
  for (const secret of secrets) {
    let keys: string[];
    try {
      keys = fs
        .readdirSync(path.join(dir, secret))
        .filter((name) => !name.startsWith('.'))
        .sort();
    } catch {
      continue;
    }
    for (const key of keys) parts.push(`${secret}/${key}=${statPrint(path.join(dir, secret, key))}`);
  }
  return parts.join('|');
}

export function fingerprints(targets: WatchTargets): Fingerprints {
  return { config: statPrint(targets.configFile), secrets: secretsPrint(targets.secretsDir) };
}

export interface ChangeWatcher {
  close(): void;
}

/**
 * Calls `onChange` (debounced) with what changed. Events only trigger a fingerprint comparison, so
 * spurious events do not reload anything.
 */
export function watchForChanges(
  targets: WatchTargets,
  onChange: (changed: { config: boolean; secrets: boolean }) => void,
  options: { pollIntervalMs: number; debounceMs?: number },
): ChangeWatcher {
  let last = fingerprints(targets);
  let timer: NodeJS.Timeout | undefined;
  const check = (): void => {
    timer = undefined;
    const now = fingerprints(targets);
    const changed = { config: now.config !== last.config, secrets: now.secrets !== last.secrets };
    last = now;
    if (changed.config || changed.secrets) onChange(changed);
  };
  const schedule = (): void => {
    if (timer === undefined) timer = setTimeout(check, options.debounceMs ?? 50);
  };
  const watchers: fs.FSWatcher[] = [];
  const watchDir = (dir: string): void => {
    try {
      const watcher = fs.watch(dir, { persistent: false }, schedule);
      watcher.on('error', () => undefined);
      watchers.push(watcher);
    } catch {
      // Polling covers directories that cannot be watched.
    }
  };
  watchDir(path.dirname(targets.configFile));
  if (targets.secretsDir !== undefined) {
    watchDir(targets.secretsDir);
    try {
      for (const name of fs.readdirSync(targets.secretsDir)) {
        if (!name.startsWith('.')) watchDir(path.join(targets.secretsDir, name));
      }
    } catch {
      // Missing secrets directory: polling notices when it appears.
    }
  }
  const poll = setInterval(check, options.pollIntervalMs);
  poll.unref();
  return {
    close(): void {
      clearInterval(poll);
      if (timer !== undefined) clearTimeout(timer);
      for (const watcher of watchers) watcher.close();
    },
  };
}
