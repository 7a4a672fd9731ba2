import { normalizeRequestPath } from '../../../lib/dataplane/path-normalize';

describe('path normalisation (EG HCM defaults)', () => {
  it.each([
    ['/a/./b/../c', '/a/c'],
    ['/a//b///c?x=//y', '/a/b/c?x=//y'],
    ['/../../etc', '/etc'],
    ['/v1/%2e%2E/admin', '/admin'],
    ['/a/b/..', '/a/'],
    ['/', '/'],
  ])('%s -> %s', (input, expected) => {
    expect(normalizeRequestPath(input)).toEqual({ kind: 'path', path: expected });
  });

  it('redirects a path with escaped slashes to the unescaped, normalised path', () => {
    expect(normalizeRequestPath('/v1/models%2F..%2fsecret?q=1')).toEqual({
      kind: 'redirect',
      location: '/v1/secret?q=1',
    });
  });
});
