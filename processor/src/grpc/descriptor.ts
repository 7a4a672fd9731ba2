import { Root, type INamespace } from 'protobufjs/light';

/**
 * The ext_proc + health protobuf descriptor, precompiled at build time into generated/protos.json (bundled
 * into dist/main.js). Only when the generated file is missing (tests before a build) are the .proto files
 * parsed at runtime.
 */
export function loadProtoRoot(): Root {
  return Root.fromJSON(loadDescriptorJson());
}

function loadDescriptorJson(): INamespace {
  try {
    return require('../../generated/protos.json') as INamespace;
  } catch {
    return (require('../../scripts/descriptor.cjs') as { buildDescriptor(): INamespace }).buildDescriptor();
  }
}
