import { MAX_FINISH_REASONS, MAX_VALUE_BYTES, ResponseFacts } from '../../src/tracing/response-facts';

describe('ResponseFacts', () => {
  it('reads the first model and every finish reason of OpenAI and Anthropic answers', () => {
    const openai = new ResponseFacts();
    openai.push(
      Buffer.from('{\n  "id": "x",\n  "model" : "gpt-4o-2024-08-06",\n  "choices": [{"finish_reason": "stop"},'),
    );
    openai.push(Buffer.from('{"finish_reason":null},{"finish_reason":"tool_calls"},{"finish_reason":"stop"}]}'));
    expect(openai.model).toBe('gpt-4o-2024-08-06');
    expect(openai.finishReasons).toEqual(['stop', 'tool_calls']);

    const anthropic = new ResponseFacts();
    anthropic.push(Buffer.from('event: message_start\ndata: {"message":{"model":"claude-x","stop_reason":null}}\n\n'));
    anthropic.push(Buffer.from('data: {"type":"message_delta","delta":{"stop_reason":"end_turn"}}\n\n'));
    expect(anthropic.model).toBe('claude-x');
    expect(anthropic.finishReasons).toEqual(['end_turn']);
  });

  it('never reads text inside strings as a key, and bounds what it keeps', () => {
    const facts = new ResponseFacts();
    facts.push(Buffer.from('{"content":"say \\"model\\": \\"fake\\" and \\"finish_reason\\":\\"x\\"","model":"real"}'));
    expect(facts.model).toBe('real');
    expect(facts.finishReasons).toEqual([]);
    const long = new ResponseFacts();
    long.push(Buffer.from(`{"model":"${'m'.repeat(1000)}"}`));
    expect(long.model).toHaveLength(MAX_VALUE_BYTES);
    const many = new ResponseFacts();
    for (let i = 0; i < 100; i++) many.push(Buffer.from(`{"finish_reason":"r${i}"}`));
    expect(many.finishReasons).toHaveLength(MAX_FINISH_REASONS);
  });

  it('takes only whole keys, not keys that end like them', () => {
    const facts = new ResponseFacts();
    facts.push(Buffer.from('{"my_model":"no","model":"yes","nonstop_reason":"a","my_finish_reason":"b"}'));
    facts.push(Buffer.from('{"x_reason":"c","finish_reason":"length"},{"stop_reason":"end_turn"}'));
    expect(facts.model).toBe('yes');
    expect(facts.finishReasons).toEqual(['length', 'end_turn']);
  });
});
