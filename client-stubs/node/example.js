#!/usr/bin/env node
// Campaign for an mcl lock through the sidecar; do leader work only while leading.
// The reference example for Node.js (client-stubs/test/run.sh runs it against a real sidecar).
//   MCL_SIDECAR_ADDR  the sidecar (default 127.0.0.1:7400)
//   MCL_LOCK          lock name (default example-lock); MCL_NAMESPACE (default: the sidecar's)
//   MCL_IDENTITY      candidate identity (default: the sidecar's, i.e. pod name + uid)
// Needs: npm install (@grpc/grpc-js, @grpc/proto-loader). The .proto is loaded at run time.
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const definition = protoLoader.loadSync(path.join(__dirname, 'proto/mcl/v1/election.proto'), {
  keepCase: true, longs: String, enums: String, defaults: true, // int64 tokens as strings
});
const { Election } = grpc.loadPackageDefinition(definition).mcl.v1;

const env = (key, def) => process.env[key] || def;
// The sidecar listens on loopback only, so plaintext is fine.
const client = new Election(env('MCL_SIDECAR_ADDR', '127.0.0.1:7400'), grpc.credentials.createInsecure());
const call = client.Campaign({
  lock: { namespace: env('MCL_NAMESPACE', ''), name: env('MCL_LOCK', 'example-lock') },
  identity: env('MCL_IDENTITY', ''),
});

// Leader work runs only between LEADER and LOST. Pass the fencing token to what you write.
let work = null;
function startWork(token) {
  stopWork();
  const tick = () => console.log(`leader work token=${token}`);
  tick();
  work = setInterval(tick, 1000);
}
function stopWork() {
  if (work) clearInterval(work);
  work = null;
}

call.on('data', (ev) => {
  const l = ev.leader || {};
  console.log(`event state=${ev.state} leader=${l.identity || ''} cluster=${l.cluster || ''} ` +
    `token=${l.fencing_token || 0}`);
  if (ev.state === 'LEADER') startWork(l.fencing_token);
  else if (ev.state === 'LOST') stopWork(); // stop acting as leader at once
});

let stopping = false;
call.on('error', (err) => {
  stopWork();
  if (stopping && err.code === grpc.status.CANCELLED) return; // our own cancel
  console.error(`campaign stream ended: ${err.message}`);
  process.exitCode = 1;
});
call.on('close', () => {
  stopWork();
  if (stopping) console.log('resigned, bye');
  client.close();
});

// SIGTERM (pod shutdown) or Ctrl-C cancels the Campaign stream: that is how we resign.
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    stopping = true;
    stopWork();
    call.cancel();
  });
}
