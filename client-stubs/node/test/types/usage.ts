// Compiled (not run) by `npm run typecheck`: the declarations in index.d.ts must accept the
// library's intended use and reject misuse (the @ts-expect-error lines must be errors).
import { Campaign, Cause, ClockError, Leadership, LeadershipEvent, runWhileLeader } from '../../index';

async function usage(signal: AbortSignal): Promise<void> {
  const n: number | undefined = await runWhileLeader({ name: 'my-lock', namespace: 'ns' }, async (l: Leadership) => {
    const token: bigint = l.token;
    while (!l.signal.aborted && l.isLeader()) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const why: 'lost' | 'deadline' | 'stream ended' | 'stopped' | undefined = l.cause;
    return Number(token) + (why === Cause.DEADLINE ? 1 : 0);
  }, { signal });

  const c = new Campaign({
    name: 'x', stopMarginMs: 50, leaseDurationSeconds: 15,
    onEvent: (e: LeadershipEvent) => { const b: bigint | undefined = e.validUntilNs; void b; },
  });
  const t: bigint | undefined = c.fencingToken;
  const leading: boolean = c.isLeader();
  try {
    await c.run(() => 'sync result is fine');
  } catch (err) {
    if (err instanceof ClockError) { const s: bigint = err.sentNs; void s; }
  }
  c.close();
  void n; void t; void leading;

  // @ts-expect-error the lock's name is required
  new Campaign({ namespace: 'ns' });
  // @ts-expect-error tokens are bigint, not number
  await runWhileLeader({ name: 'x' }, async (l) => { const k: number = l.token; void k; });
}
void usage;
