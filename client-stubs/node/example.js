#!/usr/bin/env node
// Campaign for an mcl lock through the sidecar; do leader work only while leading.
// The reference example for Node.js (client-stubs/test/run.sh runs it against a real sidecar),
// with the library in this folder (the npm package mcl-election): the leader function runs while
// this candidate leads, and its signal aborts at LOST, at the stream's end, and at the validity
// bound when no renewal came.
//   MCL_SIDECAR_ADDR  the sidecar (default 127.0.0.1:7400)
//   MCL_LOCK          lock name (default example-lock); MCL_NAMESPACE (default: the sidecar's)
//   MCL_IDENTITY      candidate identity (default: the sidecar's, i.e. pod name + uid)
// Needs: npm ci. In your own project: npm install mcl-election, require('mcl-election').
'use strict';
const { Campaign, CampaignError } = require('./');

// Stands for what only the leader may do; pass the fencing token to what you write.
async function leaderWork(leadership) {
  const { token, signal } = leadership;
  while (!signal.aborted) {
    console.log(`leader work token=${token}`);
    await new Promise((resolve) => {
      const t = setTimeout(resolve, 1000);
      signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
    });
  }
}

async function main() {
  const env = (key, def) => process.env[key] || def;
  const campaign = new Campaign({
    name: env('MCL_LOCK', 'example-lock'), namespace: env('MCL_NAMESPACE', ''), identity: env('MCL_IDENTITY', ''),
    onEvent: (ev) => {
      if (ev.renewal) return; // the same grant with a later bound, about every third of the session TTL
      console.log(`event state=${ev.state} leader=${ev.leader} cluster=${ev.cluster} token=${ev.fencingToken}`);
      if (ev.local) console.log(`stopped leading: ${ev.reason}`);
    },
  });
  // SIGTERM (pod shutdown) or Ctrl-C aborts the campaign: leader work stops and it resigns.
  const stop = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => stop.abort());
  try {
    await campaign.run(leaderWork, { signal: stop.signal });
    console.log('resigned, bye');
  } catch (err) {
    console.error(`campaign ended: ${err instanceof CampaignError ? err.message : err.stack}`);
    process.exitCode = 1;
  } finally {
    campaign.close();
  }
}

main();
