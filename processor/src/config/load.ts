import * as fs from 'node:fs';
import {
  parseProcessorConfig,
  ProcessorConfigError,
  type ProcessorConfig,
} from '@ai-gateway-constructs/processor-config';

/** Reads and validates the config file; throws ProcessorConfigError with a specific message. */
export function readConfigFile(file: string): ProcessorConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new ProcessorConfigError([
      `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    ]);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new ProcessorConfigError([`${file} is not valid JSON: ${(error as Error).message}`]);
  }
  return parseProcessorConfig(document);
}
