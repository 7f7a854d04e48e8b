#!/usr/bin/env python3
"""Records who holds a lock's etcd key over time, for the kubelet test's "the lock was never without
a holder for longer than a handoff" checks.

    keywatch.py record --endpoint URL --key KEY --out FILE   runs until killed
    keywatch.py gaps FILE --since T0 [--until T1]             the longest holderless stretch in
                                                              [T0, T1], in seconds
    keywatch.py now                                           this machine's CLOCK_MONOTONIC

`record` reads the key once, then follows etcdctl's watch from the next revision (no event is
missed), writing "MONOTONIC_SECONDS REVISION HOLDER" per change (HOLDER "-" when the key is gone;
else "cluster/holder" from the value). Times are CLOCK_MONOTONIC, so the test's own time stamps
(`now`) compare with them.
"""
import argparse
import base64
import ctypes
import json
import signal
import subprocess
import sys
import time


def holder(value_b64):
    try:
        v = json.loads(base64.b64decode(value_b64))
        return f"{v.get('cluster', '?')}/{v.get('holder', '?')}"
    except (ValueError, TypeError):
        return "?/unreadable"


def record(endpoint, key, out):
    get = subprocess.run(["etcdctl", f"--endpoints={endpoint}", "get", key, "-w", "json"],
                         capture_output=True, text=True, check=True)
    doc = json.loads(get.stdout)
    rev = int(doc["header"]["revision"])
    kvs = doc.get("kvs") or []
    with open(out, "a", buffering=1) as f:
        f.write(f"{time.monotonic():.6f} {rev} {holder(kvs[0]['value']) if kvs else '-'}\n")
        # etcdctl dies with this process (PR_SET_PDEATHSIG), however this one ends.
        watch = subprocess.Popen(["etcdctl", f"--endpoints={endpoint}", "watch", key,
                                  f"--rev={rev + 1}", "-w", "json"],
                                 stdout=subprocess.PIPE, text=True,
                                 preexec_fn=lambda: ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM))
        signal.signal(signal.SIGTERM, lambda *_: (watch.terminate(), sys.exit(0)))
        for line in watch.stdout:
            now = time.monotonic()
            try:
                resp = json.loads(line)
            except ValueError:
                continue
            for ev in resp.get("Events") or []:
                kv = ev.get("kv", {})
                gone = ev.get("type") == 1 or ev.get("type") == "DELETE"
                f.write(f"{now:.6f} {kv.get('mod_revision', 0)} "
                        f"{'-' if gone else holder(kv.get('value', ''))}\n")


def gaps(path, since, until):
    rows = []
    with open(path) as f:
        for line in f:
            t, _, h = line.split()
            rows.append((float(t), h))
    if not rows:
        sys.exit("keywatch: no records")
    until = until if until is not None else time.monotonic()
    state, longest, gap_start = rows[0][1], 0.0, None
    for t, h in rows:
        if t > since:
            break
        state = h
    if state == "-":
        gap_start = since
    for t, h in rows:
        if t <= since or t > until:
            continue
        if h == "-" and gap_start is None:
            gap_start = t
        elif h != "-" and gap_start is not None:
            longest = max(longest, t - gap_start)
            gap_start = None
    if gap_start is not None:
        longest = max(longest, until - gap_start)
    changes = sum(1 for t, _ in rows if since < t <= until)
    print(f"{longest:.3f} {changes}")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("--endpoint", required=True)
    r.add_argument("--key", required=True)
    r.add_argument("--out", required=True)
    g = sub.add_parser("gaps")
    g.add_argument("file")
    g.add_argument("--since", type=float, required=True)
    g.add_argument("--until", type=float)
    sub.add_parser("now")
    a = p.parse_args()
    if a.cmd == "record":
        record(a.endpoint, a.key, a.out)
    elif a.cmd == "gaps":
        gaps(a.file, a.since, a.until)
    else:
        print(f"{time.monotonic():.6f}")


if __name__ == "__main__":
    main()
