#!/usr/bin/env python3
"""The monitoring agent that runs inside each twin VM: once a second it sends one UDP datagram of JSON
with its VM's own figures to the collector on the host.

It is shipped over SSH as one file and needs nothing but the standard library (a VM's root is an
overlay of the host's ``/``, so ``python3`` is there). What it reports, and from where:

* ``hostname``: the VM's own UTS name (the server's name).
* ``processes``: how many processes the VM runs (``/proc`` of its own PID namespace).
* ``net``: ``/proc/net/dev`` of the VM's own network namespace (``lo`` left out).

A VM's CPU and memory are not read here: inside a twin VM, ``/proc/stat`` and ``/proc/meminfo`` are
the host's and the VM's ``/sys`` is its network namespace's sysfs, without the cgroup filesystem. The
collector takes those from the twin's VM API instead, as a cloud's own metering does (``metering.py``).

Usage: ``python3 agent.py HOST PORT [INTERVAL]``. It runs until killed (a crashed VM's agent dies with
the VM's processes, which is what the collector is there to notice).
"""

import json
import os
import socket
import sys
import time


def count_processes():
    try:
        return sum(1 for name in os.listdir("/proc") if name.isdigit())
    except OSError:
        return None


def read_net():
    out = {}
    try:
        with open("/proc/net/dev") as fh:
            for line in fh.readlines()[2:]:
                name, _, data = line.partition(":")
                name = name.strip()
                f = data.split()
                if name == "lo" or len(f) < 16:
                    continue
                out[name] = {"rx_bytes": int(f[0]), "rx_packets": int(f[1]),
                             "tx_bytes": int(f[8]), "tx_packets": int(f[9])}
    except OSError:
        pass
    return out


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    interval = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
    hostname = socket.gethostname()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    seq = 0
    next_at = time.monotonic()
    while True:
        seq += 1
        doc = {"v": 1, "hostname": hostname, "seq": seq, "time": time.time(),
               "processes": count_processes(), "net": read_net()}
        try:
            sock.sendto(json.dumps(doc, separators=(",", ":")).encode(), (host, port))
        except OSError:
            pass                 # the network is down for now: try again next second
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))


if __name__ == "__main__":
    main()
