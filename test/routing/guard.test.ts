import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/routing/clock.js';
import { parseTrafficConfig } from '../../src/routing/config.js';
import { trafficGuardPolicy } from '../../src/routing/guard.js';
import { TrafficService } from '../../src/routing/service.js';
import { context } from './fakes.js';

describe('traffic guard', () => {
  it('refuses to unload a version the traffic policy needs, and lets the rest through', async () => {
    const clock = new ManualClock(0);
    const traffic = await TrafficService.open(new Map([['fraud', parseTrafficConfig({ blue_green: { active: 1, standby: 2, keep_warm: '1m' } }, 'fraud')]]), { clock });
    const guard = trafficGuardPolicy(traffic);
    const done: string[] = [];
    const next = async (_ctx: unknown, call: { action: string; version?: string }) => void done.push(`${call.action} ${call.version ?? '*'}`);
    await expect(guard.control!(context('fraud'), { action: 'model.unload', write: true, model: 'fraud', version: '2' }, next)).rejects.toThrow(
      /model 'fraud' version 2 is in use by its traffic policy/,
    );
    await expect(guard.control!(context('fraud'), { action: 'model.unload', write: true, model: 'fraud' }, next)).rejects.toThrow(/version 1, 2/);
    await guard.control!(context('fraud'), { action: 'model.unload', write: true, model: 'fraud', version: '3' }, next);
    await guard.control!(context('other'), { action: 'model.unload', write: true, model: 'other' }, next);
    await guard.control!(context('fraud'), { action: 'model.metadata', write: false, model: 'fraud' }, next);
    // After a switch the old version is kept warm for keep_warm, then may go.
    await traffic.act('fraud', 'switch', 'ops');
    await expect(guard.control!(context('fraud'), { action: 'model.unload', write: true, model: 'fraud', version: '1' }, next)).rejects.toThrow(/version 1 is in use/);
    clock.advance(60_001);
    await guard.control!(context('fraud'), { action: 'model.unload', write: true, model: 'fraud', version: '1' }, next);
    expect(done).toEqual(['model.unload 3', 'model.unload *', 'model.metadata *', 'model.unload 1']);
    await traffic.close();
  });
});
