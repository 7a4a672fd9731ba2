/**
 * The public API is reviewed through api/*.api.md (api-extractor reports of the built declarations): `npm test` runs
 * `npm run api:check` before jest, and these tests prove that check fails when the surface changes without the report,
 * that the checked-in reports are current, and that what ships carries no `@internal` declaration.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Extractor, ExtractorConfig } from '@microsoft/api-extractor';

const ROOT = path.resolve(__dirname, '..', '..');
const BUILD_LIB = path.join(ROOT, 'build', 'lib');
const TIMEOUT = 120_000;

function filesUnder(dir: string, suffix: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith(suffix))
    .map((f) => path.join(dir, f));
}

beforeAll(() => {
  if (!fs.existsSync(path.join(BUILD_LIB, 'index.d.ts'))) {
    throw new Error('build/lib is missing: run `npm run build` first (`npm test` does)');
  }
});

describe('the package entry point', () => {
  it('exports names, never whole modules', () => {
    const source = fs.readFileSync(path.join(ROOT, 'lib', 'index.ts'), 'utf8');
    expect(source).not.toMatch(/export\s*\*/);
    expect(source).toMatch(/export \{ AIGateway,/);
  });

  it('ships no @internal declaration in its .d.ts files', () => {
    const marked = (f: string) => fs.readFileSync(f, 'utf8').includes('@internal');
    const sources = filesUnder(path.join(ROOT, 'lib'), '.ts').filter(marked);
    expect(sources.length).toBeGreaterThan(0);
    const shipped = filesUnder(BUILD_LIB, '.d.ts').filter(marked);
    expect(shipped.map((f) => path.relative(ROOT, f))).toEqual([]);
  });
});

describe('the API reports', () => {
  it(
    'match the built declarations of both entry points (npm run api:check)',
    () => {
      const script = path.join(ROOT, 'scripts', 'api-report.mjs');
      const check = spawnSync(process.execPath, [script], { cwd: ROOT, encoding: 'utf8' });
      expect(check.stderr).not.toContain('does not match');
      expect(check.status).toBe(0);
      expect(fs.existsSync(path.join(ROOT, 'api', 'ai-gateway-constructs.api.md'))).toBe(true);
      expect(fs.existsSync(path.join(ROOT, 'api', 'ai-gateway-constructs-pulumi.api.md'))).toBe(true);
    },
    TIMEOUT,
  );

  describe('checked against declarations that export one more name', () => {
    const fixture = path.join(ROOT, 'build', 'api-report-test');
    const reportFolder = path.join(fixture, 'api');
    const report = path.join(reportFolder, 'ai-gateway-constructs.api.md');

    /** api/api-extractor.json pointed at a copy of build/lib and of the checked-in report, never at the originals. */
    function check(extraExport: string | undefined) {
      fs.rmSync(fixture, { recursive: true, force: true });
      // Every declaration of build/ in the same layout (lib's declarations may import others from build/).
      for (const dir of ['lib', 'processor']) {
        fs.cpSync(path.join(ROOT, 'build', dir), path.join(fixture, dir), {
          recursive: true,
          filter: (f) => f.endsWith('.d.ts') || fs.statSync(f).isDirectory(),
        });
      }
      fs.mkdirSync(reportFolder, { recursive: true });
      fs.copyFileSync(path.join(ROOT, 'api', 'ai-gateway-constructs.api.md'), report);
      const entry = path.join(fixture, 'lib', 'index.d.ts');
      if (extraExport) fs.appendFileSync(entry, `${extraExport}\n`);
      const configObject = ExtractorConfig.loadFile(path.join(ROOT, 'api', 'api-extractor.json'));
      configObject.projectFolder = ROOT;
      configObject.mainEntryPointFilePath = entry;
      configObject.compiler = { overrideTsconfig: { ...configObject.compiler?.overrideTsconfig, files: [entry] } };
      configObject.apiReport!.reportFolder = reportFolder;
      configObject.apiReport!.reportTempFolder = path.join(fixture, 'temp');
      const config = ExtractorConfig.prepare({
        configObject,
        configObjectFullPath: path.join(ROOT, 'api', 'api-extractor.json'),
        packageJsonFullPath: path.join(ROOT, 'package.json'),
      });
      const messages: string[] = [];
      const result = Extractor.invoke(config, {
        localBuild: false,
        messageCallback: (message) => {
          messages.push(message.text);
          message.handled = true;
        },
      });
      return { result, messages, reportText: fs.readFileSync(report, 'utf8') };
    }

    afterAll(() => fs.rmSync(fixture, { recursive: true, force: true }));

    it(
      'pass when nothing changed',
      () => {
        const { result } = check(undefined);
        expect(result.apiReportChanged).toBe(false);
        expect(result.succeeded).toBe(true);
      },
      TIMEOUT,
    );

    it(
      'fail, and leave the report as it was, when the surface changed without it',
      () => {
        const before = fs.readFileSync(path.join(ROOT, 'api', 'ai-gateway-constructs.api.md'), 'utf8');
        const { result, messages, reportText } = check('export declare const UNREVIEWED_EXPORT: number;');
        expect(result.apiReportChanged).toBe(true);
        expect(result.succeeded).toBe(false);
        expect(messages.join('\n')).toContain('You have changed the API signature for this project');
        expect(reportText).toBe(before);
        expect(fs.readFileSync(path.join(fixture, 'temp', 'ai-gateway-constructs.api.md'), 'utf8')).toContain(
          'export const UNREVIEWED_EXPORT: number;',
        );
      },
      TIMEOUT,
    );
  });
});
