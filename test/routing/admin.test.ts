import { describe, expect, it } from 'vitest';
import { getTraffic, listTraffic, putTraffic } from '../../src/routing/admin.js';
import { TrafficService } from '../../src/routing/service.js';

describe('traffic admin handlers', () => {
  it('answer malformed requests with 400 and a message that says what to send', async () => {
    const traffic = await TrafficService.open(new Map());
    const deps = { traffic, served: { versions: (m: string) => (m === 'fraud' ? ['1', '2'] : undefined) } };
    expect(await putTraffic(deps, 'fraud', {})).toMatchObject({ status: 400, body: { error: expect.stringMatching(/give \{"policy": \{\.\.\.\} \| null/) } });
    expect(await putTraffic(deps, 'fraud', { action: 'fly' })).toMatchObject({ status: 400, body: { error: expect.stringMatching(/unknown action 'fly' \(pause, resume/) } });
    expect(await putTraffic(deps, 'fraud', { policy: 'x' })).toMatchObject({ status: 400, body: { error: expect.stringMatching(/'policy' must be an object/) } });
    expect(await putTraffic(deps, 'fraud', { policy: { split: { variants: [] } } })).toMatchObject({ status: 400 });
    expect(await putTraffic(deps, 'nobody', { policy: { split: { variants: [{ version: 1, weight: 100 }] } } })).toMatchObject({ status: 404, body: { error: "model 'nobody' is not served" } });
    expect(await putTraffic(deps, 'fraud', { policy: { canary: { baseline: 1, canary: 9 } } })).toMatchObject({ status: 409, body: { error: expect.stringMatching(/has no version 9 \(versions: 1, 2\); load it first/) } });
    expect(await putTraffic(deps, 'fraud', { action: 'pause' })).toMatchObject({ status: 404 });
    expect(await getTraffic(deps, 'fraud')).toMatchObject({ status: 404 });

    const set = await putTraffic(deps, 'fraud', { policy: { split: { variants: [{ version: 1, weight: 70 }, { version: 2, weight: 30 }] } } }, 'alice');
    expect(set).toMatchObject({ status: 200, body: { model: 'fraud', variants: [{ name: 'v1', weight: 70 }, { name: 'v2', weight: 30 }] } });
    expect(await putTraffic(deps, 'fraud', { action: 'pause' })).toMatchObject({ status: 409, body: { error: "'pause' applies to a canary policy; model 'fraud' has a split policy" } });
    expect(await putTraffic(deps, 'fraud', { policy: { split: { variants: [{ version: 1, weight: 100 }] } }, expected_revision: 5 })).toMatchObject({ status: 409, body: { current: 0 } });
    expect(await listTraffic(deps)).toMatchObject({ status: 200, body: { models: [{ model: 'fraud' }] } });
    const events = ((await getTraffic(deps, 'fraud')).body as { events: Array<{ action: string; actor: string }> }).events;
    expect(events.map((e) => [e.action, e.actor])).toEqual([['traffic.set', 'alice']]);
    await traffic.close();
  });
});
