#!/usr/bin/env python3
"""Gives every pod of the kubelet test bed the host's loopback services, without any listener off
the loopback: for each pod network namespace it opens listeners *inside* that namespace (on its own
loopback) and relays each connection to a port on the host's 127.0.0.1.

    netns_relay.py --control SOCKET --forward LISTEN_IP:PORT=HOST_PORT [--forward ...]

Why: the test bed's pods live on a private bridge with no route off the machine (ip_forward stays
0, no gateway, no masquerade), while the test bed's kube-apiserver and global etcd listen on the
host's 127.0.0.1 only. A pod's own 127.0.0.1 is its namespace's loopback, so "127.0.0.1:<apiserver
port>" inside a pod reaches this relay, and the relay reaches the host's apiserver. The
`kubernetes` Service's ClusterIP (KUBERNETES_SERVICE_HOST, the first address of the apiserver's
--service-cluster-ip-range, which the test bed puts in 127.0.0.0/8) is relayed the same way, so
in-cluster clients (the controller, the sidecars) work unchanged.

The CNI plugin testbed/kubelet/cni-mcl-relay, chained after `bridge`, tells this daemon about each
namespace over SOCKET ("ADD <netns path>" / "DEL <netns path>", answered "OK" or "ERR <reason>"),
so the listeners exist before the pod's containers start.

Threads: the main thread serves the control socket and is the only one that enters a pod's network
namespace (setns applies to the calling thread), long enough to bind the listeners; an accept thread
per listener; two copy threads per relayed connection. Outgoing connections are made from threads
that never left the host's namespace.
"""

import argparse
import ctypes
import os
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass


def relay(client, host_port):
    try:
        upstream = socket.create_connection(("127.0.0.1", host_port), timeout=10)
        upstream.settimeout(None)
    except OSError:
        client.close()
        return
    for s in (client, upstream):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t = threading.Thread(target=pump, args=(upstream, client), daemon=True)
    t.start()
    pump(client, upstream)
    t.join()
    client.close()
    upstream.close()


def accept_loop(listener, host_port):
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return  # closed by DEL
        threading.Thread(target=relay, args=(client, host_port), daemon=True).start()


class Relay:
    def __init__(self, forwards):
        self.forwards = forwards  # [(listen_ip, port, host_port)]
        self.listeners = {}  # netns path -> [socket]
        self.host_ns = os.open("/proc/self/ns/net", os.O_RDONLY)

    def add(self, netns):
        if netns in self.listeners:
            return
        fd = os.open(netns, os.O_RDONLY)
        socks = []
        try:
            setns(fd)
            try:
                for ip, port, _ in self.forwards:
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind((ip, port))
                    s.listen(128)
                    socks.append(s)
            finally:
                setns(self.host_ns)
        except OSError:
            for s in socks:
                s.close()
            raise
        finally:
            os.close(fd)
        self.listeners[netns] = socks
        for s, (_, _, host_port) in zip(socks, self.forwards):
            threading.Thread(target=accept_loop, args=(s, host_port), daemon=True).start()

    def delete(self, netns):
        for s in self.listeners.pop(netns, []):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def serve(control, forwards):
    r = Relay(forwards)
    if os.path.exists(control):
        os.unlink(control)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(control)
    os.chmod(control, 0o600)
    srv.listen(16)
    print(f"netns_relay: ready on {control}", flush=True)
    while True:
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(10)
            try:
                line = conn.makefile().readline().strip()
                op, _, netns = line.partition(" ")
                if op == "ADD":
                    r.add(netns)
                elif op == "DEL":
                    r.delete(netns)
                else:
                    raise ValueError(f"unknown request {line!r}")
                conn.sendall(b"OK\n")
                print(f"netns_relay: {op} {netns}", flush=True)
            except (OSError, ValueError) as e:
                conn.sendall(f"ERR {e}\n".encode())
                print(f"netns_relay: {line!r} failed: {e}", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--control", required=True)
    p.add_argument("--forward", action="append", required=True, help="LISTEN_IP:PORT=HOST_PORT")
    a = p.parse_args()
    forwards = []
    for f in a.forward:
        listen, _, host_port = f.partition("=")
        ip, _, port = listen.rpartition(":")
        if not ip.startswith("127."):
            sys.exit(f"netns_relay: {listen}: listeners are on a pod's loopback only (127.0.0.0/8)")
        forwards.append((ip, int(port), int(host_port)))
    serve(a.control, forwards)


if __name__ == "__main__":
    main()
