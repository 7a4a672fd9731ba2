import { Construct } from 'constructs';
import { GatewayModel, type RouteFragment } from '../lib/gateway-model';
import { ModelMatch } from '../lib/model-match';

function fragment(name: string, modelMatches: ModelMatch[]): RouteFragment {
  return {
    scope: new Construct(undefined as unknown as Construct, name),
    name,
    namespace: 'team',
    route: { name: `team/${name}`, endpoints: [], hostnames: [], rules: [], requiredHeaders: [] },
    backends: [],
    mutatedHeaders: [],
    modelMatches,
  };
}

describe('GatewayModel.servesModel', () => {
  test('exact names, prefixes and regular expressions of every route', () => {
    const model = new GatewayModel();
    model.addRoute(fragment('chat', [ModelMatch.exact('gpt-4o'), ModelMatch.prefix('claude-')]));
    model.addRoute(fragment('local', [ModelMatch.regex('llama-[0-9]+b')]));
    expect(model.servesModel('gpt-4o')).toBe(true);
    expect(model.servesModel('claude-sonnet')).toBe(true);
    expect(model.servesModel('llama-70b')).toBe(true);
    expect(model.servesModel('gpt-4o-mini')).toBe(false);
    expect(model.servesModel('llama-big')).toBe(false);
  });

  test('answers for the routes added since the last question', () => {
    const model = new GatewayModel();
    expect(model.servesModel('gpt-4o')).toBe(false);
    model.addRoute(fragment('chat', [ModelMatch.exact('gpt-4o')]));
    expect(model.servesModel('gpt-4o')).toBe(true);
    expect(model.servesModel('mistral-large')).toBe(false);
    model.addRoute(fragment('mistral', [ModelMatch.prefix('mistral-')]));
    expect(model.servesModel('mistral-large')).toBe(true);
  });
});
