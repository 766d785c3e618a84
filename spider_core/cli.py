"""The ``spider`` command: ``spider serve`` runs the Spider server; ``spider demo`` also registers MOCK.

Security by default: the server binds loopback unless told otherwise, and refuses a non-loopback
address unless Basic auth is configured (``SPIDER_USERNAME`` / ``SPIDER_PASSWORD``).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass

from aiohttp import web

from spider_core import __version__, adminweb, lifecycle
from spider_core.calllog import call_log
from spider_core.commands import Command, discover as discover_commands
from spider_core.errors import SpiderError
from spider_core.loop import run, stop_on_signals, tune_gc
from spider_core.model import ConnectionConfigInfo, KeyValue
from spider_core.rest.app import create_app
from spider_core.services import connection as conn_svc
from spider_core.services.context import Settings, Spider
from spider_core.splock import MODES

log = logging.getLogger("spider")

DEFAULT_PORT = 1024
MOCK_CONNECTION = "mock-config01"


@dataclass(frozen=True)
class BindAddress:
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        if self.host in ("localhost", ""):
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse_address(text: str | None) -> BindAddress:
    """``SERVER_ADDRESS`` forms: ``1.2.3.4:3000``, ``:3000``, ``localhost``, ``[::1]:1024``."""
    text = (text or "").strip()
    if not text:
        return BindAddress("127.0.0.1", DEFAULT_PORT)
    host, sep, port = text.rpartition(":")
    if not sep or "]" in port:
        host, port = text, ""
    host = host.strip("[]")
    if host in ("", "localhost"):
        host = "127.0.0.1"
    try:
        number = int(port) if port else DEFAULT_PORT
    except ValueError:
        raise SystemExit(f"spider: bad address {text!r}: the port must be a number") from None
    if not 0 <= number <= 65535:
        raise SystemExit(f"spider: bad address {text!r}: port out of range")
    return BindAddress(host, number)


def raise_open_file_limit() -> int:
    """Lift the soft RLIMIT_NOFILE to the hard limit so thousands of clients don't hit EMFILE."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


async def show_first_request(address: BindAddress, url: str, username: str | None, password: str | None) -> None:
    """``spider demo``: make a first real request against the running server and print it with the answer."""
    from aiohttp import BasicAuth, ClientSession

    host = "127.0.0.1" if address.loopback else address.host
    target = f"http://{host}:{address.port}/spider/vpc?ConnectionName={MOCK_CONNECTION}"
    auth = BasicAuth(username, password) if username and password else None
    async with ClientSession(auth=auth) as session:
        async with session.get(f"http://{host}:{address.port}/spider/connectionconfig/{MOCK_CONNECTION}") as resp:
            config = await resp.text()
        async with session.get(target) as resp:
            vpcs = await resp.text()
    print(f"MOCK connection '{MOCK_CONNECTION}' is ready:\n"
          f"  $ curl -s {url}/connectionconfig/{MOCK_CONNECTION}\n  {config.strip()}\n"
          f"  $ curl -s '{url}/vpc?ConnectionName={MOCK_CONNECTION}'\n  {vpcs.strip()}\n"
          "Create a VPC:\n"
          f"  $ curl -s -X POST {url}/vpc -H 'Content-Type: application/json' -d "
          "'{\"ConnectionName\":\"mock-config01\",\"ReqInfo\":{\"Name\":\"vpc-01\",\"IPv4_CIDR\":"
          "\"192.168.0.0/16\",\"SubnetInfoList\":[{\"Name\":\"subnet-01\",\"IPv4_CIDR\":\"192.168.1.0/24\"}]}}'\n"
          "Stop with Ctrl-C.", flush=True)


async def register_mock_connection(sp: Spider, name: str = MOCK_CONNECTION) -> None:
    """CB-Spider's ``9.mock-conn-config.sh``: driver, credential, region and config for MOCK."""
    await conn_svc.register_driver(sp, "mock-driver01", "MOCK", "mock-driver-v1.0.so")
    await conn_svc.register_credential(sp, "mock-credential01", "MOCK", [KeyValue("MockName", "mock_name00")])
    await conn_svc.register_region(sp, "mock-region01", "MOCK", [KeyValue("Region", "default")], None)
    await conn_svc.register_connection(sp, ConnectionConfigInfo(name, "MOCK", "mock-driver01", "mock-credential01",
                                                                "mock-region01"))


TWIN_CLOUDS = (("cloud-1", "openstack"), ("cloud-2", "lean-egress"), ("cloud-3", "busy-csp"))


async def register_twin_connections(sp: Spider, twin_url: str,
                                    clouds: tuple[tuple[str, str], ...] = TWIN_CLOUDS) -> list[str]:
    """CB-Spider's Cloud-Twin registration: one driver and region, a credential + config per cloud."""
    await conn_svc.register_driver(sp, "cloudtwin-driver01", "CLOUDTWIN", "cloudtwin-driver-v1.0.so")
    await conn_svc.register_region(sp, "cloudtwin-region", "CLOUDTWIN", [KeyValue("Region", "default")], None)
    names = []
    for cloud, _profile in clouds:
        cred = f"cloudtwin-{cloud}-credential01"
        await conn_svc.register_credential(sp, cred, "CLOUDTWIN", [
            KeyValue("IdentityEndpoint", twin_url), KeyValue("DomainName", cloud), KeyValue("MockName", "mock_name01")])
        name = f"cloudtwin-{cloud}-config"
        await conn_svc.register_connection(sp, ConnectionConfigInfo(name, "CLOUDTWIN", "cloudtwin-driver01", cred,
                                                                    "cloudtwin-region"))
        names.append(name)
    return names


class TwinProcess:
    """``spider demo``'s Cloud-Twin: a child process that exits with us (it watches our pid)."""

    def __init__(self, address: str, clouds: tuple[tuple[str, str], ...] = TWIN_CLOUDS) -> None:
        self.address = address
        self.clouds = clouds
        self.proc: asyncio.subprocess.Process | None = None
        host, _, port = address.rpartition(":")
        self.url = f"http://{host or '127.0.0.1'}:{port}"

    async def start(self, timeout: float = 20.0) -> str:
        args = [sys.executable, "-m", "cloudtwin", "--address", self.address, "--parent-pid", str(os.getpid())]
        for cloud, profile in self.clouds:
            args += ["--cloud", f"{cloud}={profile}"]
        self.proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except asyncio.TimeoutError:
            line = b""
        if b"listening on" not in line:
            await self.stop()
            raise SystemExit(f"spider: Cloud-Twin did not start on {self.address} (is the port in use?)")
        return line.decode().strip()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.proc = None


async def serve(address: BindAddress, *, demo: bool = False, ready: asyncio.Event | None = None,
                twin_address: str | None = None) -> None:
    username = os.environ.get("SPIDER_USERNAME") or None
    password = os.environ.get("SPIDER_PASSWORD") or None
    if bool(username) != bool(password):
        raise SystemExit("spider: set both SPIDER_USERNAME and SPIDER_PASSWORD, or neither")
    if not address.loopback and not username:
        raise SystemExit(f"spider: refusing to listen on {address.host} without authentication; set "
                         "SPIDER_USERNAME and SPIDER_PASSWORD, or bind a loopback address")
    settings = Settings.from_env()
    settings.replica_id = settings.replica_id or f"{socket.gethostname()}:{address.port}"
    settings.replica_url = f"http://{address.host}:{address.port}"
    call_log.configure(settings.root / "log" / "calllog")
    files = raise_open_file_limit()
    sp = await Spider.start(settings)
    if sp.replica is not None:  # fenced (a survivor claimed our lease and owns our work now): stop at once,
        sp.replica.on_fenced = lambda: os.kill(os.getpid(), signal.SIGKILL)  # a drain would run it twice
    runner: web.AppRunner | None = None
    twin: TwinProcess | None = None
    twin_connections: list[str] = []
    try:
        if demo:
            await register_mock_connection(sp)
            if twin_address:
                twin = TwinProcess(twin_address)
                print(await twin.start(), flush=True)
                twin_connections = await register_twin_connections(sp, twin.url)
        app = create_app(sp, username=username, password=password)
        deadline = lifecycle.shutdown_deadline()
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=deadline)
        await runner.setup()
        site = web.TCPSite(runner, address.host, address.port, backlog=4096, reuse_address=True)
        await site.start()
        url = f"http://{'localhost' if address.loopback else address.host}:{address.port}/spider"
        print(f"spidertwin Spider {__version__} listening on {url}  (MetaDB: {sp.db.location}, lock mode: "
              f"{settings.lock_mode}, auth: {'on' if username else 'off'}, open files: {files})", flush=True)
        if adminweb.enabled():
            print(f"AdminWeb (the browser console): {url}/adminweb", flush=True)
        if demo:
            await show_first_request(address, url, username, password)
            if twin_connections:
                print(f"Cloud-Twin connections are ready: {', '.join(twin_connections)} (profiles "
                      f"{', '.join(p for _, p in TWIN_CLOUDS)}):\n"
                      f"  $ curl -s '{url}/vmimage?ConnectionName={twin_connections[0]}'\n"
                      f"  $ curl -s '{url}/vmspec?ConnectionName={twin_connections[0]}'", flush=True)
        tune_gc()
        if ready is not None:
            ready.set()
        await stop_on_signals().wait()
        print(await lifecycle.stop_serving(sp, runner, deadline), flush=True)  # SIGTERM: finish or persist
        runner = None
    finally:
        if runner is not None:
            await runner.cleanup()
        await sp.close()
        if twin is not None:
            await twin.stop()
        call_log.configure(None)  # the last lines reach the file before the process ends


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spider", description="spidertwin: a CB-Spider-compatible Spider server")
    parser.add_argument("--version", action="version", version=f"spidertwin {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    plugins: dict[str, Command] = {}
    for command in discover_commands():  # spider twin / sgtest / load: registered by their packages
        plugins[command.name] = command
        command.add_arguments(sub.add_parser(command.name, help=command.help, description=command.description))
    for name, text in (("serve", "run the Spider REST server"),
                       ("demo", "run Cloud-Twin and the Spider server with ready connections: MOCK "
                                "(mock-config01) and three Cloud-Twin clouds (cloudtwin-cloud-N-config)")):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--address", default=None,
                       help="host:port to listen on (default: $SERVER_ADDRESS or 127.0.0.1:1024)")
        p.add_argument("--root", default=None, help="state directory (default: $SPIDER_ROOT or ~/.spidertwin)")
        p.add_argument("--lock-mode", choices=MODES, default=None,
                       help="sponge (default: the lock hierarchy, creates under one parent run together), "
                            "cbspider (CB-Spider's exact lock use, to compare) or global (one lock per "
                            "resource type, the old CB-Spider lock, for benchmarks only); also $SPIDER_LOCK_MODE")
        p.add_argument("--log-level", default=os.environ.get("SPIDER_LOG_LEVEL", "warning"))
        if name == "demo":
            p.add_argument("--twin-address", default="127.0.0.1:8192",
                           help="where demo starts Cloud-Twin (default 127.0.0.1:8192)")
            p.add_argument("--no-twin", action="store_true", help="MOCK only: don't start Cloud-Twin")
    args = parser.parse_args(argv)
    if args.command in plugins:
        return plugins[args.command].run(args)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.root:
        os.environ["SPIDER_ROOT"] = args.root
    if args.lock_mode:
        os.environ["SPIDER_LOCK_MODE"] = args.lock_mode
    lock_mode = os.environ.get("SPIDER_LOCK_MODE", "").strip().lower() or "sponge"
    if lock_mode not in MODES:
        print(f"spider: SPIDER_LOCK_MODE must be one of {', '.join(MODES)}, not {lock_mode!r}", file=sys.stderr)
        return 2
    address = parse_address(args.address or os.environ.get("SERVER_ADDRESS"))
    try:
        demo = args.command == "demo"
        run(serve(address, demo=demo, twin_address=None if not demo or args.no_twin else args.twin_address))
    except OSError as exc:
        print(f"spider: cannot listen on {address.host}:{address.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except SpiderError as exc:  # a MetaDB that cannot be reached or is misconfigured (SPIDER_METADB_*)
        print(f"spider: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
