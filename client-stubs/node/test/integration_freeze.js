// On the real test bed (client-stubs/test/run.sh runs it): freezes the leading candidate's
// sidecar (SIGSTOP) and checks that the app's leader work stopped at or before the bound of its
// last LEADER and before the other candidate was granted the lock, on CLOCK_MONOTONIC.
//   MCL_SIDECAR_ADDR, MCL_SIDECAR_PID (its process), MCL_SIDECAR_ADDR_2, MCL_NAMESPACE
// Prints "ok - ..." / "not ok - ..." lines and a FREEZE line with the margins.
'use strict';
const grpc = require('@grpc/grpc-js');
const mcl = require('..');

const env = process.env;
const ns = env.MCL_NAMESPACE || '';
const name = `node-freeze-${Math.floor(Math.random() * 1e12)}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let failed = 0;
function check(ok, what, detail = '') {
  console.log(`${ok ? 'ok' : 'not ok'} - node: ${what}`);
  if (!ok) { failed++; console.log(`#   ${detail}`); }
}

function candidate(addr, id) {
  const g = { bound: 0n, lastWork: 0n, stoppedAt: 0n, grantRecv: 0n, started: false, stopped: false };
  const campaign = new mcl.Campaign({
    name, namespace: ns, identity: id, addr, leaseDurationSeconds: 4,
    onEvent: (ev) => {
      if (ev.state !== 'LEADER') return;
      g.bound = ev.validUntilNs;
      if (!ev.renewal && g.grantRecv === 0n) g.grantRecv = ev.receivedNs;
    },
  });
  const ac = new AbortController();
  g.run = campaign.run(async (l) => {
    g.started = true;
    while (!l.signal.aborted) {
      if (l.isLeader()) g.lastWork = mcl.monotonicNs();
      await sleep(5);
    }
    g.stoppedAt = mcl.monotonicNs();
    g.stopped = true;
  }, { signal: ac.signal });
  g.stop = async () => { ac.abort(); await g.run; campaign.close(); };
  return g;
}

async function until(cond, ms) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

async function main() {
  const pid = Number(env.MCL_SIDECAR_PID);
  const a = candidate(env.MCL_SIDECAR_ADDR, `${name}-a`);
  if (!await until(() => a.started, 30000)) { check(false, 'frozen sidecar: the first candidate leads', 'no LEADER in 30 s'); return; }
  const b = candidate(env.MCL_SIDECAR_ADDR_2, `${name}-b`);
  await sleep(1000);
  const frozenAt = mcl.monotonicNs();
  process.kill(pid, 'SIGSTOP');
  let ok;
  try {
    ok = await until(() => a.stopped, 15000) && await until(() => b.started, 30000);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  if (!ok) { check(false, 'frozen sidecar: the leader stops and the other candidate is granted', 'timed out'); }
  else {
    // The grant's acquire time: the granting controller's wall clock, on this host.
    const client = new (mcl.ElectionClient())(env.MCL_SIDECAR_ADDR_2, grpc.credentials.createInsecure());
    const resp = await new Promise((resolve, reject) => client.Leader({ lock: { namespace: ns, name } },
      { deadline: Date.now() + 10000 }, (err, r) => (err ? reject(err) : resolve(r))));
    client.close();
    const acq = resp.leader.acquire_time;
    const acquireWallNs = BigInt(acq.seconds) * 1000000000n + BigInt(acq.nanos);
    const wallNowNs = BigInt(Date.now()) * 1000000n;
    const grant = mcl.monotonicNs() - (wallNowNs - acquireWallNs);
    const ms = (x) => (Number(x) / 1e6).toFixed(1);
    console.log(`# a: frozen at 0, last work +${ms(a.lastWork - frozenAt)} ms, stopped +${ms(a.stoppedAt - frozenAt)} ms, ` +
      `bound +${ms(a.bound - frozenAt)} ms; b: granted +${ms(grant - frozenAt)} ms, LEADER received +${ms(b.grantRecv - frozenAt)} ms`);
    check(a.stoppedAt <= a.bound, 'frozen sidecar: leader work stopped at or before its bound', `${ms(a.stoppedAt - a.bound)} ms after`);
    check(a.lastWork <= a.stoppedAt && a.stoppedAt < grant, 'frozen sidecar: leader work stopped before the other candidate was granted',
      `stopped ${ms(a.stoppedAt - grant)} ms after the grant`);
    check(a.stoppedAt < b.grantRecv, 'frozen sidecar: ... and before its LEADER arrived');
    console.log(`FREEZE lang=node stop_before_bound_ms=${ms(a.bound - a.stoppedAt)} stop_before_grant_ms=${ms(grant - a.stoppedAt)} ` +
      `stop_before_leader_event_ms=${ms(b.grantRecv - a.stoppedAt)} freeze_to_stop_ms=${ms(a.stoppedAt - frozenAt)}`);
  }
  await a.stop();
  await b.stop();
}

main().then(() => { process.exitCode = failed ? 1 : 0; }, (err) => { console.log(`not ok - node: freeze test: ${err.stack}`); process.exitCode = 1; });
