/** The budget-use gauge: the largest share seen per window, a new window starting over, ended windows dropped. */
import { Metrics } from '../../src/metrics';

async function series(metrics: Metrics): Promise<string[]> {
  const text = await metrics.registry.getSingleMetricAsString('ai_gateway_budget_used_ratio');
  return text.split('\n').filter((line) => line.startsWith('ai_gateway_budget_used_ratio{'));
}

describe('ai_gateway_budget_used_ratio', () => {
  it('keeps the largest share of the current window and starts over in the next', async () => {
    const metrics = new Metrics();
    const hourFromNow = Date.now() + 3_600_000;
    metrics.recordBudgetUse({ name: 'team/daily', usedRatio: 0.6, windowEndsAt: hourFromNow }, 'alice');
    metrics.recordBudgetUse({ name: 'team/daily', usedRatio: 0.4, windowEndsAt: hourFromNow }, 'alice');
    metrics.recordBudgetUse({ name: 'team/daily', usedRatio: 0.3, windowEndsAt: hourFromNow }, undefined);
    expect(await series(metrics)).toEqual([
      'ai_gateway_budget_used_ratio{budget="team/daily",consumer="alice"} 0.6',
      'ai_gateway_budget_used_ratio{budget="team/daily",consumer="(none)"} 0.3',
    ]);
    metrics.recordBudgetUse({ name: 'team/daily', usedRatio: 0.1, windowEndsAt: hourFromNow + 86_400_000 }, 'alice');
    // A late answer from the window that ended changes nothing.
    metrics.recordBudgetUse({ name: 'team/daily', usedRatio: 0.9, windowEndsAt: hourFromNow }, 'alice');
    expect(await series(metrics)).toContain('ai_gateway_budget_used_ratio{budget="team/daily",consumer="alice"} 0.1');
  });

  it('makes room without dropping the other budgets: ended windows first, then the one ending soonest', async () => {
    const metrics = new Metrics();
    const now = Date.now();
    for (let i = 0; i < 2000; i++)
      metrics.recordBudgetUse({ name: `b${i}`, usedRatio: 0.5, windowEndsAt: now + 3_600_000 + i }, 'c');
    metrics.recordBudgetUse({ name: 'new', usedRatio: 0.9, windowEndsAt: now + 7_200_000 }, 'c');
    const lines = await series(metrics);
    expect(lines).toHaveLength(2000);
    expect(lines).toContain('ai_gateway_budget_used_ratio{budget="new",consumer="c"} 0.9');
    expect(lines.some((line) => line.includes('budget="b0"'))).toBe(false);
    expect(lines).toContain('ai_gateway_budget_used_ratio{budget="b1",consumer="c"} 0.5');
  });

  it('drops a series once its window has ended', async () => {
    const metrics = new Metrics();
    metrics.recordBudgetUse({ name: 'team/minute', usedRatio: 0.9, windowEndsAt: Date.now() + 40 }, 'bob');
    expect(await series(metrics)).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(await series(metrics)).toEqual([]);
  });
});
