/**
 * The API reports of the package's two entry points, made by api-extractor from the built declarations (build/lib, so
 * run `npm run build` first; `@internal` members are already stripped there):
 *
 *   `ai-gateway-constructs`         api/api-extractor.json         -> api/ai-gateway-constructs.api.md
 *   `ai-gateway-constructs/pulumi`  api/api-extractor.pulumi.json  -> api/ai-gateway-constructs-pulumi.api.md
 *
 * `node scripts/api-report.mjs` (npm run api:check, part of `npm test`) exits 1 when a report differs from what the
 * build exports, or api-extractor reports an error. `--update` (npm run api:update) rewrites the reports instead:
 * review the diff and commit it with the change to the surface.
 */
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { Extractor, ExtractorConfig } = createRequire(import.meta.url)('@microsoft/api-extractor');

const CONFIGS = ['api/api-extractor.json', 'api/api-extractor.pulumi.json'];
const update = process.argv.includes('--update');

let failed = false;
for (const file of CONFIGS) {
  const config = ExtractorConfig.loadFileAndPrepare(join(root, file));
  const report = relative(root, config.reportFilePath);
  const result = Extractor.invoke(config, { localBuild: update, showVerboseMessages: false });
  if (result.apiReportChanged && !update) {
    console.error(
      `${report} does not match ${relative(root, config.mainEntryPointFilePath)}: the public API changed. ` +
        'Run `npm run api:update`, review the diff of the report and commit it with the change.',
    );
  }
  if (!result.succeeded) failed = true;
  else if (update) console.log(`${report}: ${result.apiReportChanged ? 'updated' : 'unchanged'}`);
}
process.exit(failed ? 1 : 0);
