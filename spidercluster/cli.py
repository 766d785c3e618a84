"""spider cluster: PostgreSQL, a shared moto, N Spider replicas and HAProxy on this machine.

``spider cluster up --replicas 3`` starts them and prints the one URL to use; Ctrl-C (or ``spider
cluster down`` from another shell) stops them all. ``--config cluster.yaml`` reads the settings from
a file (``spidercluster.config``); flags given win over it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from spidercluster import config as cluster_config
from spidercluster.procs import StartError
from spidercluster.up import down, up

COMMAND_HELP = "run Spider as a cluster on this machine: PostgreSQL, moto, N replicas, HAProxy"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="cluster_command", required=True)
    p = sub.add_parser("up", help="start the cluster; Ctrl-C stops it")
    p.add_argument("--config", type=Path, default=None, help="a cluster.yaml (docs/cluster.md)")
    p.add_argument("--replicas", type=int, default=None, help="spider serve replicas (default 3)")
    p.add_argument("--twin-shards", type=int, default=None,
                   help="Cloud-Twin shards (default 0): cloud-1..3 spread over them, registered as CLOUDTWIN "
                        "connections")
    p.add_argument("--load-workers", type=int, default=None,
                   help="Locust workers (spider load --worker) waiting for a spider load --master (default 0)")
    p.add_argument("--load-master-port", type=int, default=None,
                   help="the port the workers look for the master at (default 5557)")
    p.add_argument("--listen", default=None, help="HAProxy's address (default 127.0.0.1:1024)")
    p.add_argument("--state-dir", default=None,
                   help=f"PostgreSQL data, replica roots, logs (default {cluster_config.default_state_dir()})")
    p.add_argument("--no-moto", dest="moto", action="store_const", const=False, default=None,
                   help="no shared moto server (MOCK then runs per replica and replicas disagree)")
    d = sub.add_parser("down", help="stop a cluster started by spider cluster up")
    d.add_argument("--state-dir", default=None)


def run(args: argparse.Namespace) -> int:
    if args.cluster_command == "down":
        n = down(Path(args.state_dir) if args.state_dir else cluster_config.default_state_dir())
        print(f"spider cluster: stopped {n} process(es)" if n else "spider cluster: nothing running")
        return 0
    try:
        cfg = cluster_config.load(args.config, replicas=args.replicas, twin_shards=args.twin_shards,
                                  load_workers=args.load_workers, load_master_port=args.load_master_port,
                                  listen=args.listen, state_dir=args.state_dir, moto=args.moto)
    except (ValueError, OSError) as exc:
        print(f"spider cluster: {exc}", file=sys.stderr)
        return 2
    print(f"spider cluster: starting in {cfg.state_dir}", flush=True)
    try:
        cluster = up(cfg, log=lambda line: print(line, flush=True))
    except StartError as exc:
        print(f"spider cluster: {exc}", file=sys.stderr)
        return 1
    print(f"spider cluster: ready at {cluster.url}  ({cfg.replicas} replica(s) behind HAProxy; "
          "Ctrl-C or 'spider cluster down' stops it)", flush=True)
    for note in cluster.notes:
        print(f"  {note}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    reported: set[str] = set()
    try:
        while not stop.wait(1.0):
            cluster.respawn()
            for child in cluster.children:
                if not child.alive() and child.name not in reported:
                    reported.add(child.name)
                    print(f"spider cluster: {child.name} exited ({child.proc.returncode}); see {child.log_path}",
                          file=sys.stderr, flush=True)
            if any(c.name in reported for c in cluster.children if c not in cluster.replicas + cluster.twins):
                break  # the database, moto or HAProxy is gone: nothing works without it; replicas and
                # twin shards may die (a shard takes only its own clouds down)
    finally:
        print("spider cluster: stopping", flush=True)
        cluster.stop()
    return 0
