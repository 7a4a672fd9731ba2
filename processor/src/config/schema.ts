/**
 * Moved to the workspace package @ai-gateway-constructs/processor-config (packages/processor-config). This re-export
 * remains only while lib/ still imports the old path; delete it once lib imports the package.
 */
export * from '@ai-gateway-constructs/processor-config';
