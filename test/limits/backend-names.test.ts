import { Chart, Testing } from 'cdk8s';
import { Construct } from 'constructs';
import { sameBackendNameError } from '../../lib/limits/backend-names';

describe('sameBackendNameError', () => {
  const chart = () => new Chart(Testing.app(), 'platform');

  it('is undefined for the same backend twice and for different names', () => {
    const scope = chart();
    const openai = new Construct(scope, 'OpenAI');
    const route = new Construct(scope, 'Chat');
    const first = { backend: openai, name: 'openai.platform.chat.platform', prop: 'rules[0].backends[0].backend' };
    expect(sameBackendNameError(route, { ...first, prop: 'rules[1].backends[0].backend' }, [first])).toBeUndefined();
    const other = {
      backend: new Construct(scope, 'Other'),
      name: 'other.platform.chat.platform',
      prop: 'rules[1].backends[0].backend',
    };
    expect(sameBackendNameError(route, other, [first])).toBeUndefined();
  });

  it('throws if two backends of a route share a name, naming both construct paths', () => {
    const scope = chart();
    const route = new Construct(scope, 'Chat');
    const first = {
      backend: new Construct(scope, 'A'),
      name: 'openai.ai.chat.ai',
      prop: 'rules[0].backends[0].backend',
    };
    const second = {
      backend: new Construct(scope, 'B'),
      name: 'openai.ai.chat.ai',
      prop: 'rules[0].backends[1].backend',
    };
    expect(sameBackendNameError(route, second, [first])?.message).toBe(
      'platform/Chat: invalid rules[0].backends[1].backend "openai.ai.chat.ai": backends platform/B and platform/A ' +
        '(rules[0].backends[0].backend) have the same name in the processor config, which tells backends apart ' +
        'by name; give one of the ProviderBackends another name',
    );
  });
});
