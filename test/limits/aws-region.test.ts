import { Chart, Testing } from 'cdk8s';
import { Construct } from 'constructs';
import { awsRegionProblem, checkAwsRegion, isAwsRegion, suggestAwsRegion } from '../../lib/limits/aws-region';
import { expectThrows } from './expect-error';

const backend = () => new Construct(new Chart(Testing.app(), 'platform'), 'Bedrock');

describe('AWS region names', () => {
  it.each([
    'us-east-1',
    'us-west-2',
    'us-gov-west-1',
    'us-gov-east-1',
    'cn-north-1',
    'cn-northwest-1',
    'eu-central-2',
    'eu-south-1',
    'ap-southeast-5',
    'ap-northeast-3',
    'il-central-1',
    'mx-central-1',
    'ca-west-1',
    'me-south-1',
    'af-south-1',
    'sa-east-1',
    'us-iso-east-1',
    'us-isob-east-1',
    'eu-isoe-west-1',
    'us-isof-south-1',
    'eusc-de-east-1',
  ])('accepts %s', (region) => expect(isAwsRegion(region)).toBe(true));

  it.each([
    ['us-east1', 'us-east-1'],
    ['useast1', 'us-east-1'],
    ['us_east_1', 'us-east-1'],
    ['US-EAST-1', 'us-east-1'],
    ['us-east-1a', 'us-east-1'],
    ['us--east-1', 'us-east-1'],
    ['ap-northeast1', 'ap-northeast-1'],
    ['apnortheast-1', 'ap-northeast-1'],
    ['us-gov-west1', 'us-gov-west-1'],
  ])('rejects %s and suggests %s', (typo, suggestion) => {
    expect(isAwsRegion(typo)).toBe(false);
    expect(suggestAwsRegion(typo)).toBe(suggestion);
  });

  it.each(['us-central1', 'europe-west4', 'global', 'us-esat-1', 'us-east-0', 'us-east-01', 'u-east-1', ''])(
    'rejects %j',
    (region) => {
      expect(isAwsRegion(region)).toBe(false);
    },
  );

  it('suggests nothing when nothing near has the shape', () => {
    expect(suggestAwsRegion('europe-west4')).toBeUndefined();
    expect(awsRegionProblem('europe-west4')).toBe(
      'is not an AWS region name (<area>-<direction>-<number>, e.g. "us-east-1", "us-gov-west-1", "cn-north-1", ' +
        '"eu-central-2")',
    );
  });

  it('throws if the region is a typo (us-east1)', () => {
    expectThrows(
      () => checkAwsRegion(backend(), 'region', 'us-east1'),
      'platform/Bedrock: invalid region "us-east1": is not an AWS region name (<area>-<direction>-<number>, e.g. ' +
        '"us-east-1", ' +
        '"us-gov-west-1", "cn-north-1", "eu-central-2"); did you mean "us-east-1"?',
    );
    expect(checkAwsRegion(backend(), 'region', 'ap-southeast-5')).toBe('ap-southeast-5');
  });
});
