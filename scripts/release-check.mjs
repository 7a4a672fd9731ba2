#!/usr/bin/env node
// Refuses a release whose versions disagree: the git tag, both package.json versions, the pushed image's tag
// and OCI version label, and the default image reference the built library synthesizes.
//   node scripts/release-check.mjs --tag v1.2.3 [--image REF] [--image-config FILE] [--library]
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    tag: { type: 'string' },
    image: { type: 'string' },
    'image-config': { type: 'string' },
    library: { type: 'boolean', default: false },
  },
});

const problems = [];
const readVersion = (file) => JSON.parse(readFileSync(join(root, file), 'utf8')).version;
const version = readVersion('package.json');
const processorVersion = readVersion('processor/package.json');

if (processorVersion !== version) {
  problems.push(`processor/package.json version ${processorVersion} differs from package.json version ${version}`);
}
if (values.tag === undefined) {
  problems.push('--tag is required (the git tag being released, e.g. v1.2.3)');
} else if (values.tag !== `v${version}`) {
  problems.push(`tag ${values.tag} does not match package.json version ${version} (expected v${version})`);
}
if (values.image !== undefined) {
  const tag = imageTag(values.image);
  if (tag !== version)
    problems.push(`image ${values.image} is tagged ${tag ?? '(none)'}, not the package version ${version}`);
}
if (values['image-config'] !== undefined) {
  const document = JSON.parse(readFileSync(values['image-config'], 'utf8'));
  // `docker buildx imagetools inspect --format '{{json .Image}}'` prints one config, or a map by platform.
  const configs = document && typeof document === 'object' && 'config' in document ? { image: document } : document;
  for (const [platform, config] of Object.entries(configs ?? {})) {
    const label = config?.config?.Labels?.['org.opencontainers.image.version'];
    if (label !== version) problems.push(`image ${platform} has version label ${label ?? '(none)'}, not ${version}`);
  }
}
if (values.library) {
  const require = createRequire(join(root, 'package.json'));
  const library = require(join(root, 'build/lib/index.js'));
  const reference = library.ProcessorImage.default().reference;
  if (values.image === undefined) problems.push('--library needs --image to compare with');
  else if (reference !== values.image)
    problems.push(`the library's default processor image is ${reference}, not ${values.image}`);
}

if (problems.length > 0) {
  for (const problem of problems) console.error(`release-check: ${problem}`);
  process.exit(1);
}
console.log(`release-check: version ${version} is consistent`);

function imageTag(reference) {
  const withoutDigest = reference.split('@')[0];
  const lastSlash = withoutDigest.lastIndexOf('/');
  const colon = withoutDigest.indexOf(':', lastSlash + 1);
  return colon === -1 ? undefined : withoutDigest.slice(colon + 1);
}
