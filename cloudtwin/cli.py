"""``spider twin`` (also ``python -m cloudtwin``): run Cloud-Twin.

Security by default: it binds 127.0.0.1:8192 and refuses a non-loopback address unless an admin token
is set (``--admin-token`` or ``CLOUDTWIN_ADMIN_TOKEN``), which then guards ``/_twin/*``; the OpenStack
APIs are always behind Keystone logins.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from cloudtwin import snapshot
from cloudtwin.app import TwinServer
from cloudtwin.address import DEFAULT_ADDRESS, is_loopback, parse_address
from cloudtwin.clouds import CloudRule, TwinConfig
from cloudtwin.identity.fernet import KeyRepositoryError
from cloudtwin.twin import Twin
from cloudtwin.profiles import ProfileError

from spider_core.loop import run as run_loop, stop_on_signals, tune_gc

if TYPE_CHECKING:
    from cloudtwin.cluster import ClusterMap

log = logging.getLogger("cloudtwin")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", default=os.environ.get("CLOUDTWIN_ADDRESS", DEFAULT_ADDRESS),
                   help=f"host:port to listen on (default {DEFAULT_ADDRESS}; $CLOUDTWIN_ADDRESS; with --cluster: "
                        "the shard's address in the cluster file)")
    p.add_argument("--port", type=int, default=None, help="port to listen on (overrides the port of --address)")
    p.add_argument("--cloud", action="append", default=[], metavar="NAME=PROFILE",
                   help="create cloud NAME from PROFILE at start (repeatable); NAME may be a glob such as "
                        "'busy-*', which then picks the profile of clouds created on first login")
    p.add_argument("--default-profile", default="openstack",
                   help="profile of a cloud created on first login (default: openstack)")
    p.add_argument("--no-auto-create", action="store_true",
                   help="a login to an unknown domain fails instead of creating the cloud")
    p.add_argument("--profiles", action="append", default=[], metavar="DIR",
                   help="directory of extra profile YAML files (repeatable)")
    p.add_argument("--scenario", action="append", default=[], metavar="FILE|NAME",
                   help="load a fault scenario at start (a YAML file or a shipped scenario name)")
    p.add_argument("--seed", type=int,
                   default=int(os.environ["CLOUDTWIN_SEED"]) if os.environ.get("CLOUDTWIN_SEED") else None,
                   help="seed for ids, jitter, weights, failures and faults: a run replays exactly under the "
                        "same seed (default: a random one, printed at start)")
    p.add_argument("--time-scale", type=float, default=1.0,
                   help="multiply every lifecycle delay (0.1 = ten times faster)")
    p.add_argument("--state", default=None, metavar="FILE",
                   help="restore the state from FILE at start (if it exists) and save it there at stop")
    p.add_argument("--image-dir", default=os.environ.get("CLOUDTWIN_IMAGE_DIR"), metavar="DIR",
                   help="where Glance keeps image data (default: a temporary directory removed at exit)")
    p.add_argument("--image-max-bytes", type=int, default=1024 ** 3, metavar="N",
                   help="largest image Glance accepts, in bytes (413 beyond it; default 1 GiB)")
    p.add_argument("--admin-token", default=os.environ.get("CLOUDTWIN_ADMIN_TOKEN"),
                   help="require X-Twin-Admin-Token on /_twin/* (mandatory for a non-loopback bind)")
    p.add_argument("--keystone-key-repo", default=os.environ.get("CLOUDTWIN_KEYSTONE_KEY_REPO") or None,
                   metavar="DIR", help="Fernet key repository (Keystone's layout: files 0, 1, ...; made if empty): "
                                       "twin processes sharing it accept each other's tokens (default: keys "
                                       "made in memory for this process; $CLOUDTWIN_KEYSTONE_KEY_REPO)")
    p.add_argument("--public-url", default=None, help="base URL to put in the Keystone catalog")
    p.add_argument("--dataplane", choices=["netns"], default=os.environ.get("CLOUDTWIN_DATAPLANE") or None,
                   help="give every ACTIVE server a network namespace whose nftables rules follow its security "
                        "groups, with TCP 22/1000 and UDP 2000 responders, probed via /_twin/dataplane/probe "
                        "(needs root, iproute2 and nftables; $CLOUDTWIN_DATAPLANE)")
    p.add_argument("--vm-runtime", choices=["machine", "network"],
                   default=os.environ.get("CLOUDTWIN_VM_RUNTIME") or "machine",
                   help="with --dataplane: 'machine' (default) runs each VM as a small machine you can ssh "
                        "into (sshd with the server's keypair, metadata, user-data, a cgroup with the flavor's "
                        "limits); 'network' keeps bare namespaces with responders only ($CLOUDTWIN_VM_RUNTIME)")
    p.add_argument("--dataplane-cleanup", action="store_true",
                   help="remove the namespaces left by data-plane twins that are no longer running, then exit")
    p.add_argument("--cluster", default=os.environ.get("CLOUDTWIN_CLUSTER") or None, metavar="FILE",
                   help="run as one shard of a Cloud-Twin cluster: FILE (YAML) maps cloud names to shards "
                        "($CLOUDTWIN_CLUSTER; see docs/cluster.md)")
    p.add_argument("--shard", default=os.environ.get("CLOUDTWIN_SHARD") or None, metavar="NAME",
                   help="with --cluster: which shard of the file this process is ($CLOUDTWIN_SHARD)")
    p.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--log-level", default=os.environ.get("CLOUDTWIN_LOG_LEVEL", "warning"))
    from cloudtwin.vm_cli import add_subcommands

    add_subcommands(p)      # spider twin exec|ssh: into the VMs of a running twin


def config_from_args(args: argparse.Namespace) -> TwinConfig:
    if args.time_scale <= 0:
        raise SystemExit("cloudtwin: --time-scale must be > 0")
    rules = []
    for item in args.cloud:
        name, sep, profile = item.partition("=")
        if not sep or not name or not profile:
            raise SystemExit(f"cloudtwin: --cloud {item!r}: use NAME=PROFILE")
        rules.append(CloudRule(name, profile))
    return TwinConfig(seed=args.seed, time_scale=args.time_scale, default_profile=args.default_profile,
                      cloud_rules=rules, auto_create=not args.no_auto_create, profile_dirs=list(args.profiles),
                      admin_token=args.admin_token or None, state_file=args.state,
                      image_dir=getattr(args, "image_dir", None),
                      image_max_bytes=getattr(args, "image_max_bytes", None) or 1024 ** 3,
                      keystone_key_repo=getattr(args, "keystone_key_repo", None),
                      dataplane=getattr(args, "dataplane", None),
                      vm_runtime=getattr(args, "vm_runtime", None) or "machine")


def load_cluster(args: argparse.Namespace) -> "ClusterMap | None":
    """The cluster file and this process's shard in it (None without --cluster)."""
    from cloudtwin.cluster import ClusterError, load

    if not getattr(args, "cluster", None):
        if getattr(args, "shard", None):
            raise SystemExit("cloudtwin: --shard needs --cluster FILE")
        return None
    if not args.shard:
        raise SystemExit("cloudtwin: --cluster needs --shard NAME (which shard of the file this process is)")
    try:
        cluster = load(args.cluster)
    except ClusterError as exc:
        raise SystemExit(f"cloudtwin: {exc}") from None
    if args.shard not in cluster.shards:
        raise SystemExit(f"cloudtwin: shard '{args.shard}' is not in {args.cluster} "
                         f"(shards: {', '.join(cluster.shards)})")
    if args.address != os.environ.get("CLOUDTWIN_ADDRESS", DEFAULT_ADDRESS) or args.port is not None:
        raise SystemExit("cloudtwin: with --cluster the shard listens at its address in the cluster file; "
                         "drop --address/--port")
    args.keystone_key_repo = args.keystone_key_repo or cluster.key_repo
    if not args.keystone_key_repo:
        raise SystemExit("cloudtwin: shards share their Fernet keys, so that a token issued by one is read by "
                         "all: set keystone_key_repo in the cluster file or --keystone-key-repo DIR")
    return cluster


def listen_address(args: argparse.Namespace, cluster: "ClusterMap | None") -> tuple[str, int]:
    if cluster is not None:
        me = cluster.shards[args.shard]
        return me.host, me.port
    host, port = parse_address(args.address)
    return host, args.port if args.port is not None else port


def build_twin(args: argparse.Namespace, cluster: "ClusterMap | None" = None) -> Twin:
    """The twin of ``args``; with ``cluster`` (from ``load_cluster``) one shard of it."""
    config = config_from_args(args)
    if cluster is not None:
        config.cloud_rules = cluster.cloud_rules(args.shard) + config.cloud_rules
    try:
        twin = Twin(config)
    except (ProfileError, KeyRepositoryError, OSError) as exc:
        raise SystemExit(f"cloudtwin: {exc}") from None
    if cluster is not None:
        from cloudtwin.forward import Peers
        from cloudtwin.shards import ShardRole

        me = cluster.shards[args.shard]
        twin.shard = ShardRole(cluster, me, Peers(cluster, me.name, config.admin_token))
    for rule in twin.config.cloud_rules:
        if not any(ch in rule.match for ch in "*?["):
            twin.cloud(rule.match, create=True)
    if args.state and Path(args.state).exists():
        try:
            info = snapshot.load(twin, args.state)
        except snapshot.SnapshotError as exc:
            raise SystemExit(f"cloudtwin: {exc}") from None
        print(f"Cloud-Twin restored {info['objects']} objects in {info['clouds']} clouds from {args.state}",
              flush=True)
    from cloudtwin.admin import shipped_scenarios

    for item in args.scenario:
        path = Path(item) if Path(item).exists() else shipped_scenarios().get(item)
        if path is None:
            raise SystemExit(f"cloudtwin: scenario {item!r} is neither a file nor one of "
                             f"{', '.join(shipped_scenarios())}")
        try:
            doc = yaml.safe_load(Path(path).read_text())
            from cloudtwin.admin import load_scenario

            twin.faults.add_many(load_scenario(doc, str(path)), source=f"scenario:{Path(path).stem}")
        except (ValueError, yaml.YAMLError) as exc:
            raise SystemExit(f"cloudtwin: scenario {path}: {exc}") from None
    return twin


async def serve(args: argparse.Namespace, ready: asyncio.Event | None = None) -> None:
    started = time.perf_counter()
    cluster = load_cluster(args)
    host, port = listen_address(args, cluster)
    if not is_loopback(host) and not args.admin_token:
        raise SystemExit(f"cloudtwin: refusing to listen on {host} without an admin token; set --admin-token "
                         "or CLOUDTWIN_ADMIN_TOKEN, or bind a loopback address")
    twin = build_twin(args, cluster)
    public_url = args.public_url or (cluster.shards[args.shard].url if cluster is not None else None)
    server = TwinServer(twin, host=host, port=port, public_url=public_url)
    await server.start()
    elapsed = (time.perf_counter() - started) * 1000
    print(f"Cloud-Twin listening on {server.url}  (Keystone: {server.url}/v3, login admin/admin, "
          f"domain = cloud name; profiles: {', '.join(twin.profiles.names())}; clouds: "
          f"{', '.join(twin.clouds) or 'created on first login'}; seed {twin.seed}; ready in {elapsed:.0f} ms)",
          flush=True)
    if cluster is not None:
        print(f"Cloud-Twin shard '{args.shard}' of {len(cluster.shards)} ({cluster.source}): answers logins for "
              f"every cloud, holds the clouds the file gives it, forwards the rest", flush=True)
    if twin.dataplane is not None:
        print(f"Cloud-Twin data plane: namespaces {twin.dataplane.prefix}-* (GET /_twin/dataplane, "
              "POST /_twin/dataplane/probe)", flush=True)
    tune_gc()
    if ready is not None:
        ready.set()
    stop = stop_on_signals()
    watcher = asyncio.get_running_loop().create_task(_watch_parent(args.parent_pid, stop)) if args.parent_pid else None
    try:
        await stop.wait()
    finally:
        if watcher is not None:
            watcher.cancel()
        if args.state:
            info = snapshot.save(twin, args.state)
            print(f"Cloud-Twin saved {info['objects']} objects to {info['path']}", flush=True)
        await server.stop()


async def _watch_parent(pid: int, stop: asyncio.Event) -> None:
    """Exit with the process that started us (``spider demo``), even if it was killed."""
    while True:
        await asyncio.sleep(0.5)
        if os.getppid() != pid:
            stop.set()
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spider twin", description="Run Cloud-Twin, the OpenStack-compatible "
                                     "multi-cloud emulator")
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run(args)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "twin_command", None):
        from cloudtwin import vm_cli

        return vm_cli.run(args)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if getattr(args, "dataplane_cleanup", False):
        return dataplane_cleanup()
    if getattr(args, "dataplane", None):
        from cloudtwin.dataplane.manager import DataPlaneError, preflight

        try:
            preflight()
        except DataPlaneError as exc:
            print(f"cloudtwin: {exc}", file=sys.stderr)
            return 2
    try:
        run_loop(serve(args))
    except OSError as exc:
        where = f"shard '{args.shard}'" if getattr(args, "cluster", None) else args.address
        print(f"cloudtwin: cannot listen on {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def dataplane_cleanup() -> int:
    """``--dataplane-cleanup``: delete every namespace of a data-plane twin that is no longer running."""
    from cloudtwin.dataplane import cleanup
    from cloudtwin.dataplane.manager import DataPlaneError, preflight

    try:
        preflight()
    except DataPlaneError as exc:
        print(f"cloudtwin: {exc}", file=sys.stderr)
        return 2
    done = cleanup.cleanup_stale()
    print(f"Cloud-Twin data plane: removed {done['namespaces']} namespaces of {len(done['prefixes'])} stale "
          f"instances ({', '.join(done['prefixes']) or 'none'}); running: {', '.join(done['live']) or 'none'}",
          flush=True)
    return 0
