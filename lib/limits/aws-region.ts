import type { IConstruct } from 'constructs';
import { invalid } from '../errors';

/**
 * The shape every AWS region name has, in every partition: `<area>[-<partition>]-<direction>-<number>`.
 * - area: two to four letters (`us`, `eu`, `ap`, `cn`, `il`, `mx`, `eusc`);
 * - partition: `gov` (GovCloud), `iso`, `isob`, `isoe`, `isof` (isolated regions) or a country (`de` in the
 *   European Sovereign Cloud's `eusc-de-east-1`), when not the public one;
 * - direction: a compass point, `central`, or two points run together (`northeast`, `southwest`);
 * - number: from 1, without leading zeros.
 * This is the pattern behind the partitions' own region regexes (`^(us|eu|ap|...)-\w+-\d+$`, `^us-gov-\w+-\d+$`,
 * `^cn-\w+-\d+$`, ...), tightened to the words AWS uses so that typos fail; new regions keep to it, so no list of
 * regions goes stale here.
 */
const AWS_REGION = /^[a-z]{2,4}(-(gov|iso[a-z]?|[a-z]{2}))?-(central|(north|south)(east|west)?|east|west)-[1-9][0-9]*$/;
/** A direction run into the area (`useast-1`), longest words first. */
const GLUED_DIRECTION = /^([a-z]{2,4})(northeast|northwest|southeast|southwest|central|north|south|east|west)-/;

/**
 * Whether `region` has the shape of an AWS region name (`us-east-1`, `us-gov-west-1`, `cn-north-1`, `eu-central-2`).
 */
export function isAwsRegion(region: string): boolean {
  return typeof region === 'string' && AWS_REGION.test(region);
}

/**
 * A region name close to `region` that has the AWS shape, for "did you mean": missing or doubled dashes
 * (`us-east1`, `useast1`, `us--east-1`), `_` or spaces for dashes, upper case, and availability zones
 * (`us-east-1a`).
 */
export function suggestAwsRegion(region: string): string | undefined {
  if (typeof region !== 'string') return undefined;
  let text = region
    .trim()
    .toLowerCase()
    .replace(/[\s_]+/g, '-');
  text = text.replace(/([a-z])([0-9])/g, '$1-$2').replace(/-([0-9]+)[a-z]$/, '-$1');
  text = text.replace(GLUED_DIRECTION, '$1-$2-').replace(/-+/g, '-').replace(/^-|-$/g, '');
  return text !== region && isAwsRegion(text) ? text : undefined;
}

/** Why `region` is not an AWS region name (with a suggestion when one is near), or undefined. */
export function awsRegionProblem(region: string): string | undefined {
  if (isAwsRegion(region)) return undefined;
  const suggestion = suggestAwsRegion(region);
  return (
    'is not an AWS region name (<area>-<direction>-<number>, e.g. "us-east-1", "us-gov-west-1", "cn-north-1", ' +
    '"eu-central-2")' +
    (suggestion !== undefined ? `; did you mean "${suggestion}"?` : '')
  );
}

/** Returns `region`; throws naming the construct, the prop and the value unless it is an AWS region name. */
export function checkAwsRegion(scope: IConstruct, prop: string, region: string): string {
  const problem = awsRegionProblem(region);
  if (problem !== undefined) throw invalid(scope, prop, region, problem);
  return region;
}
