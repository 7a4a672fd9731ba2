/**
 * A throwaway certificate authority for HTTPS fakes, made with the `openssl` command line (Node cannot create
 * X.509 certificates): one CA, and leaf certificates for the names a test asks for, valid for a day.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ServerTls } from './recording-server';

export interface TestCa {
  /** The CA certificate (PEM), to trust. */
  readonly caCert: string;
  /** A key and a certificate for `dnsNames`, signed by the CA. */
  issue(dnsNames: string[]): ServerTls;
  close(): void;
}

/** Whether the `openssl` command is available (the suite fails without it under CI). */
export function opensslAvailable(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function createTestCa(): TestCa {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ai-gateway-e2e-ca-'));
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) =>
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.crt'),
    '-days',
    '1',
    '-subj',
    '/CN=ai-gateway e2e test CA',
  );
  let serial = 0;
  return {
    caCert: fs.readFileSync(file('ca.crt'), 'utf8'),
    issue(dnsNames) {
      serial++;
      const stem = `leaf-${serial}`;
      fs.writeFileSync(
        file(`${stem}.ext`),
        `subjectAltName=${dnsNames.map((name) => `DNS:${name}`).join(',')}\nextendedKeyUsage=serverAuth\n`,
      );
      openssl(
        'req',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        file(`${stem}.key`),
        '-out',
        file(`${stem}.csr`),
        '-subj',
        `/CN=${dnsNames[0]}`,
      );
      openssl(
        'x509',
        '-req',
        '-in',
        file(`${stem}.csr`),
        '-CA',
        file('ca.crt'),
        '-CAkey',
        file('ca.key'),
        '-set_serial',
        String(1000 + serial),
        '-days',
        '1',
        '-extfile',
        file(`${stem}.ext`),
        '-out',
        file(`${stem}.crt`),
      );
      return { key: fs.readFileSync(file(`${stem}.key`), 'utf8'), cert: fs.readFileSync(file(`${stem}.crt`), 'utf8') };
    },
    close() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
