import { Chart, Testing } from 'cdk8s';
import { Construct } from 'constructs';
import { checkAnnotations, checkLabels, labelValueProblem, qualifiedNameProblem } from '../../lib/limits/metadata';
import { expectThrows } from './expect-error';

const processor = () => new Construct(new Construct(new Chart(Testing.app(), 'platform'), 'Gateway'), 'Processor');

describe('qualified names (label and annotation keys)', () => {
  it.each([
    'app',
    'eks.amazonaws.com/role-arn',
    'iam.gke.io/gcp-service-account',
    'a_b.c-d',
    'x'.repeat(63),
    `${'a'.repeat(253)}/n`,
  ])('accepts %s', (key) => expect(qualifiedNameProblem(key)).toBeUndefined());

  it.each([
    ['', 'must not be empty'],
    ['a/b/c', 'may contain at most one "/" (between an optional DNS subdomain prefix and the name)'],
    ['/name', 'has an empty prefix before "/"'],
    ['example.com/', 'has an empty name after the prefix'],
    [`${'a'.repeat(254)}/n`, 'has a prefix of 254 characters; at most 253 are allowed'],
    [
      'Example.com/n',
      'has the prefix "Example.com", which is not a lower-case DNS subdomain (letters, digits, "-" and ".", starting ' +
        'and ending with a letter or digit)',
    ],
    ['x'.repeat(64), 'has a name part of 64 characters; at most 63 are allowed'],
    [
      '-lead',
      'has the name part "-lead", which must consist of letters, digits, "-", "_" and ".", and start and end with a ' +
        'letter or digit',
    ],
  ])('rejects %j: %s', (key, problem) => expect(qualifiedNameProblem(key)).toBe(problem));
});

describe('label values', () => {
  it('accepts empty and well-formed values', () => {
    expect(labelValueProblem('')).toBeUndefined();
    expect(labelValueProblem('ai-gateway_1.0')).toBeUndefined();
  });

  it('rejects long and malformed values', () => {
    expect(labelValueProblem('v'.repeat(64))).toBe('is 64 characters long; a label value may have at most 63');
    expect(labelValueProblem('a b')).toBe(
      'must be empty or consist of letters, digits, "-", "_" and ".", and start and end with a letter or digit',
    );
  });
});

describe('checkAnnotations', () => {
  it('accepts well-formed annotations, upper-case prefixes included (the API server lower-cases keys first)', () => {
    expect(() =>
      checkAnnotations(processor(), 'processor.serviceAccountAnnotations', {
        'eks.amazonaws.com/role-arn': 'arn:aws:iam::1:role/x',
        'Example.COM/Key': 'v',
      }),
    ).not.toThrow();
    expect(() => checkAnnotations(processor(), 'processor.serviceAccountAnnotations', undefined)).not.toThrow();
  });

  it('throws if an annotation key has a space', () => {
    expectThrows(
      () => checkAnnotations(processor(), 'processor.serviceAccountAnnotations', { 'eks.amazonaws.com/role arn': 'x' }),
      'platform/Gateway/Processor: invalid processor.serviceAccountAnnotations "eks.amazonaws.com/role arn": is not ' +
        'a valid annotation key: ' +
        'it has the name part "role arn", which must consist of letters, digits, "-", "_" and ".", and start and end ' +
        'with a letter or digit',
    );
  });

  it('throws if an annotation value is not a string', () => {
    expectThrows(
      () => checkAnnotations(processor(), 'processor.serviceAccountAnnotations', { replicas: 3 as unknown as string }),
      'platform/Gateway/Processor: invalid processor.serviceAccountAnnotations.replicas 3: must be a string ' +
        '(annotation values are strings)',
    );
  });

  it('throws if the annotations hold more than 256 KiB', () => {
    expectThrows(
      () => checkAnnotations(processor(), 'processor.serviceAccountAnnotations', { big: 'x'.repeat(256 * 1024) }),
      'platform/Gateway/Processor: invalid processor.serviceAccountAnnotations "262147 bytes": annotations may hold ' +
        'at most 262144 bytes ' +
        '(256 KiB) of keys and values together',
    );
  });
});

describe('checkLabels', () => {
  it('accepts well-formed labels', () => {
    expect(() => checkLabels(processor(), 'allowedRoutes', { 'team.example.com/tier': 'gold', env: '' })).not.toThrow();
  });

  it('throws if a label key is malformed', () => {
    expectThrows(
      () => checkLabels(processor(), 'allowedRoutes', { 'Team.example.com/tier': 'gold' }),
      'platform/Gateway/Processor: invalid allowedRoutes "Team.example.com/tier": is not a valid label key: it has ' +
        'the prefix ' +
        '"Team.example.com", which is not a lower-case DNS subdomain (letters, digits, "-" and ".", starting and ' +
        'ending with a letter or digit)',
    );
  });

  it('throws if a label value is malformed', () => {
    expectThrows(
      () => checkLabels(processor(), 'allowedRoutes', { tier: 'gold plus' }),
      'platform/Gateway/Processor: invalid allowedRoutes.tier "gold plus": is not a valid label value: it must be ' +
        'empty or consist of ' +
        'letters, digits, "-", "_" and ".", and start and end with a letter or digit',
    );
  });
});
