// Unit tests of the library against the fake sidecar: node --test test/campaign.test.js
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const grpc = require('@grpc/grpc-js');
const mcl = require('..');
const { FakeSidecar, withTimeout } = require('./fake_sidecar');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A leader function that records each term's token, and when and why it was stopped. */
class Recorder {
  constructor() {
    this.starts = [];
    this.stops = [];
    this.fn = async (leadership) => {
      this.starts.push(leadership.token);
      await new Promise((resolve) => leadership.signal.addEventListener('abort', resolve, { once: true }));
      this.stops.push({ token: leadership.token, at: mcl.monotonicNs(), cause: leadership.cause });
    };
  }

  async started(want) {
    await waitUntil(() => this.starts.length > 0, `fn to start (token ${want})`);
    assert.equal(this.starts.shift(), BigInt(want));
  }

  async stopped() {
    await waitUntil(() => this.stops.length > 0, 'fn to be stopped');
    return this.stops.shift();
  }

  async quiet(ms) {
    await sleep(ms);
    assert.deepEqual([this.starts, this.stops], [[], []], 'fn started or stopped when it must not');
  }
}

async function waitUntil(cond, what) {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

async function setup(t, fn, options = {}) {
  const fake = await new FakeSidecar().start();
  const campaign = new mcl.Campaign({ name: 'lock', addr: fake.addr, minBackoffMs: 20, ...options });
  const ac = new AbortController();
  const result = campaign.run(fn, { signal: ac.signal });
  result.catch(() => {}); // inspected by the tests that expect a failure
  t.after(async () => {
    ac.abort();
    await withTimeout(result.catch(() => {}), 5000, 'run() to return after abort');
    campaign.close();
    fake.stop();
  });
  return { fake, campaign, result, ac };
}

test('LOST aborts leader work', async (t) => {
  const r = new Recorder();
  const { fake, campaign } = await setup(t, r.fn, { namespace: 'ns', identity: 'me', leaseDurationSeconds: 4 });
  const s = await fake.next();
  assert.deepEqual([s.request.lock.namespace, s.request.lock.name, s.request.identity, s.request.lease_duration_seconds],
    ['ns', 'lock', 'me', 4]);
  s.state('FOLLOWER', 3);
  await r.quiet(100);
  assert.equal(campaign.isLeader(), false);
  s.leader(7, 10000);
  await r.started(7);
  assert.equal(campaign.fencingToken, 7n);
  s.state('LOST', 7);
  assert.equal((await r.stopped()).cause, mcl.Cause.LOST);
  assert.equal(campaign.isLeader(), false);
});

test('the bound lapses without a renewal', async (t) => {
  const r = new Recorder();
  const events = [];
  const { fake, campaign } = await setup(t, r.fn, { onEvent: (e) => events.push(e) });
  const s = await fake.next();
  const bound = s.leader(5, 400);
  await r.started(5);
  assert.equal(campaign.validUntilNs, bound);
  const st = await r.stopped();
  assert.equal(st.cause, mcl.Cause.DEADLINE);
  assert.ok(st.at <= bound, `leader work stopped ${(st.at - bound) / 1000000n} ms after the bound`);
  assert.equal(campaign.isLeader(), false);
  await waitUntil(() => events.length === 2, 'the local LOST');
  assert.deepEqual(events.map((e) => [e.state, e.local]), [['LEADER', false], ['LOST', true]]);
  s.leader(5, 10000); // the same grant confirmed again: fn runs again
  await r.started(5);
});

test('renewals extend the bound', async (t) => {
  const r = new Recorder();
  let renewals = 0;
  const { fake, campaign } = await setup(t, r.fn, { onEvent: (e) => { if (e.renewal) renewals++; } });
  const s = await fake.next();
  s.leader(9, 300);
  await r.started(9);
  let last;
  for (let i = 0; i < 12; i++) {
    await sleep(100);
    last = s.leader(9, 300);
    assert.equal(campaign.isLeader(), true, `not leading during renewals (round ${i})`);
  }
  await r.quiet(0);
  const st = await r.stopped();
  assert.equal(st.cause, mcl.Cause.DEADLINE);
  assert.ok(st.at <= last);
  assert.equal(renewals, 12);
});

test('stream end aborts; a reconnect never reports LEADER without a fresh event', async (t) => {
  const r = new Recorder();
  const { fake, campaign } = await setup(t, r.fn);
  const s = await fake.next();
  s.leader(11, 10000);
  await r.started(11);
  s.breakIt();
  assert.equal((await r.stopped()).cause, mcl.Cause.STREAM_ENDED);
  const s2 = await fake.next();
  s2.state('NO_LEADER');
  await r.quiet(200);
  assert.equal(campaign.isLeader(), false);
  s2.leader(12, 10000);
  await r.started(12);
});

test('clock check: a LEADER sent after its receipt fails the campaign', async (t) => {
  const r = new Recorder();
  const { fake, result } = await setup(t, r.fn);
  const s = await fake.next();
  s.leader(3, 3600e3, mcl.monotonicNs() + 3600n * 1000000000n);
  await assert.rejects(result, (err) => err instanceof mcl.ClockError && /do not share CLOCK_MONOTONIC/.test(err.message));
  await r.quiet(50);
  await withTimeout(s.closed, 5000, 'the stream to be cancelled');
});

test('a LEADER without validity is refused by default', async (t) => {
  const r = new Recorder();
  const { fake, result } = await setup(t, r.fn);
  const s = await fake.next();
  s.unboundedLeader(3);
  await assert.rejects(result, mcl.NoValidityError);
  await r.quiet(50);
});

test('allowMissingValidity leads until LOST', async (t) => {
  const r = new Recorder();
  const { fake, campaign } = await setup(t, r.fn, { allowMissingValidity: true });
  const s = await fake.next();
  s.unboundedLeader(3);
  await r.started(3);
  s.unboundedLeader(3);
  await r.quiet(200);
  assert.equal(campaign.isLeader(), true);
  s.state('LOST', 3);
  assert.equal((await r.stopped()).cause, mcl.Cause.LOST);
});

test('a LEADER already past its bound is ignored', async (t) => {
  const r = new Recorder();
  const { fake, campaign } = await setup(t, r.fn);
  (await fake.next()).leader(4, 50); // within the stop margin
  await r.quiet(200);
  assert.equal(campaign.isLeader(), false);
});

test('fn settling on its own resigns and settles run()', async (t) => {
  const { fake, result } = await setup(t, async () => 'done');
  const s = await fake.next();
  s.leader(2, 10000);
  assert.equal(await withTimeout(result, 5000, 'run()'), 'done');
  await withTimeout(s.closed, 5000, 'the stream to be cancelled');
});

test('abort stops leader work and resigns', async (t) => {
  const r = new Recorder();
  const { fake, result, ac } = await setup(t, r.fn);
  const s = await fake.next();
  s.leader(2, 10000);
  await r.started(2);
  ac.abort();
  assert.equal((await r.stopped()).cause, mcl.Cause.STOPPED);
  assert.equal(await withTimeout(result, 5000, 'run()'), undefined);
  await withTimeout(s.closed, 5000, 'the stream to be cancelled');
});

test('permanent errors end the campaign; UNAVAILABLE is retried', async (t) => {
  for (const [code, details] of [[grpc.status.NOT_FOUND, 'namespace "nope" does not exist'],
    [grpc.status.INVALID_ARGUMENT, 'lock name: invalid'], [grpc.status.ALREADY_EXISTS, 'identity me already campaigns']]) {
    const fake = await new FakeSidecar().start();
    fake.refuse.push({ code, details });
    await assert.rejects(mcl.runWhileLeader({ name: 'lock', addr: fake.addr }, async () => {}),
      (err) => err instanceof mcl.CampaignError && err.message.includes(details));
    fake.stop();
  }
  const r = new Recorder();
  const fake = await new FakeSidecar().start();
  fake.refuse.push({ code: grpc.status.UNAVAILABLE, details: 'apiserver unreachable' });
  const ac = new AbortController();
  const run = mcl.runWhileLeader({ name: 'lock', addr: fake.addr, minBackoffMs: 20 }, r.fn, { signal: ac.signal });
  (await fake.next()).leader(8, 10000);
  await r.started(8);
  ac.abort();
  await run;
  fake.stop();
});

test('options are checked', () => {
  assert.throws(() => new mcl.Campaign({}), /name/);
  assert.throws(() => new mcl.Campaign({ name: 'l', leaseDurationSeconds: 1 }), /leaseDurationSeconds/);
});

test('process.hrtime.bigint() reads CLOCK_MONOTONIC (checked against Python\'s clock_gettime)', () => {
  // Sandwich the other reading between two of ours: same clock iff it falls in between.
  const { execFileSync } = require('child_process');
  const before = mcl.monotonicNs();
  const py = BigInt(execFileSync('python3', ['-c', 'import time; print(time.clock_gettime_ns(time.CLOCK_MONOTONIC))']).toString().trim());
  const after = mcl.monotonicNs();
  assert.ok(before <= py && py <= after, `CLOCK_MONOTONIC ${py} not within [${before}, ${after}]`);
});
