"""The ``ssh`` prober: real cloud VMs, probed the way CB-Spider's ``io-traffic-test.sh`` does (§4).

* inbound, from this host: TCP = connect (+ the ``SSH-`` banner on port 22), UDP = ``nc -zu``'s rule
  (pass unless an ICMP port-unreachable comes back), ICMP = the system ``ping``;
* outbound, on the VM: ``ssh -i <key> cb-user@PublicIP nc -w3 -zv[tu] CLIENT1_IP <port>`` or
  ``ping -w3 -c3 CLIENT1_IP``; pass when the output holds ``succeeded`` / ``icmp_seq``.

The VM's listeners (``sudo nc -vktl 1000``, ``sudo nc -vkul 2000``) are started over ssh, and this
host listens on TCP 1000 and UDP 2000 in-process (its own sshd serves port 22), as CB-Spider's prepare
step does. Its skip policy is CB-Spider's: UDP blocks are unobservable and outbound needs inbound 22.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from sgtest.expect import SkipPolicy
from sgtest.probers.base import ProbeBatch, ProberError, ProberInfo, ProbeRequest, ProbeResult, VMTarget

SSH_OPTIONS = ("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10",
               "-o", "BatchMode=yes", "-o", "LogLevel=ERROR")
WAIT_S = 3  # nc -w3 / ping -w3


def ssh_command(vm: VMTarget, remote: str) -> list[str]:
    if not vm.key_file:
        raise ProberError("the ssh prober needs the keypair's private key file")
    return ["ssh", "-i", vm.key_file, *SSH_OPTIONS, f"{vm.user}@{vm.public_ip}", remote]


def outbound_remote(proto: str, port: int | None, client_ip: str) -> str:
    """The command CB-Spider runs on the VM for one outbound column."""
    if proto == "icmp":
        return f"ping -w{WAIT_S} -c3 {client_ip}"
    flag = "t" if proto == "tcp" else "u"
    return f"nc -w{WAIT_S} -zv{flag} {client_ip} {port}"


def outbound_passed(proto: str, output: str) -> bool:
    """CB-Spider's markers: ``icmp_seq`` for ping, ``succeeded`` for nc (stdout and stderr together)."""
    return ("icmp_seq" in output) if proto == "icmp" else ("succeeded" in output)


def ping_command(ip: str, count: int = 3) -> list[str]:
    return ["ping", f"-w{WAIT_S}", f"-c{count}", ip]


def listener_remote() -> str:
    """Start CB-Spider's VM-side listeners in the background (idempotent: old ones are killed first)."""
    return ("sudo killall nc >/dev/null 2>&1; "
            "nohup sudo nc -vktl 1000 >/dev/null 2>&1 & nohup sudo nc -vkul 2000 >/dev/null 2>&1 & echo started")


async def run_command(argv: list[str], timeout: float) -> tuple[int, str]:
    """Run a command, stdout+stderr as text; a missing program is a :class:`ProberError`."""
    try:
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT,
                                                    stdin=asyncio.subprocess.DEVNULL)
    except FileNotFoundError:
        raise ProberError(f"'{argv[0]}' is not installed on this host") from None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        return -1, (out or b"").decode(errors="replace") + "\n(timed out)"
    return proc.returncode or 0, out.decode(errors="replace")


async def tcp_probe(ip: str, port: int, timeout: float) -> tuple[bool, str]:
    """Connect, and on port 22 require the ``SSH-`` greeting (a connect alone can pass with broken
    return traffic, §12)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), timeout)
    except (OSError, asyncio.TimeoutError) as exc:
        return False, f"connect: {type(exc).__name__}"
    try:
        if port == 22:
            try:
                banner = await asyncio.wait_for(reader.readline(), timeout)
            except (OSError, asyncio.TimeoutError):
                return False, "connected, no banner"
            return banner.startswith(b"SSH-"), banner[:40].decode(errors="replace").strip()
        return True, "connected"
    finally:
        writer.close()


async def udp_probe(ip: str, port: int, timeout: float) -> tuple[bool, str]:
    """``nc -zu``'s verdict: pass unless the port answers with ICMP unreachable."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        sock.connect((ip, port))
        sock.send(b"X")
        try:
            await asyncio.wait_for(loop.sock_recv(sock, 2048), timeout)
            return True, "reply"
        except ConnectionRefusedError:
            return False, "ICMP port unreachable"
        except asyncio.TimeoutError:
            return True, "no ICMP error (nc -zu reports succeeded)"
    except OSError as exc:
        return False, f"send: {exc}"
    finally:
        sock.close()


class _LocalListeners:
    """TCP 1000 and UDP 2000 on this host, the targets of the outbound probes; and TCP 22 with an SSH
    greeting when no sshd of this host's serves it (a CI machine, a twin's host)."""

    def __init__(self) -> None:
        self.server: asyncio.AbstractServer | None = None
        self.ssh: asyncio.AbstractServer | None = None
        self.udp: asyncio.DatagramTransport | None = None

    async def start(self) -> list[str]:
        problems = []
        if self.server is not None:
            return problems
        try:
            self.server = await asyncio.start_server(lambda r, w: w.close(), "0.0.0.0", 1000)
        except OSError as exc:
            problems.append(f"TCP 1000: {exc.strerror or exc}")
        try:
            self.ssh = await asyncio.start_server(_greet, "0.0.0.0", 22)
        except OSError:
            self.ssh = None      # this host's own sshd answers port 22
        try:
            self.udp, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=("0.0.0.0", 2000))
        except OSError as exc:
            problems.append(f"UDP 2000: {exc.strerror or exc}")
        return problems

    async def close(self) -> None:
        for srv in (self.server, self.ssh):
            if srv is not None:
                srv.close()
                await srv.wait_closed()
        self.server = self.ssh = None
        if self.udp is not None:
            self.udp.close()
            self.udp = None


async def _greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-sgtest\r\n")
    try:
        await writer.drain()
    finally:
        writer.close()


class SshProber:
    """CB-Spider's method. Against Cloud-Twin (``twin`` given, no client IP), this host's address is the
    twin's host link on the VM's public network, which the data plane reports as ``host_ip``."""

    def __init__(self, client_ip: str, *, timeout_s: float = float(WAIT_S), listen: bool = True,
                 twin: str = "", twin_cloud: str = "", twin_region: str = "") -> None:
        if not client_ip and not twin:
            raise ProberError("the ssh prober needs this host's public IP: --client-ip (or --client-ip-echo URL)")
        self.info = ProberInfo("ssh", SkipPolicy.cbspider(), client_ip)
        self.timeout_s = timeout_s
        self.listen = listen
        self.twin, self.twin_cloud, self.twin_region = twin.rstrip("/"), twin_cloud, twin_region
        self._listeners = _LocalListeners()
        self.warnings: list[str] = []

    async def _twin_state(self) -> dict[str, Any]:
        import aiohttp

        url = self.twin + "/_twin/dataplane"
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
                async with s.get(url) as resp:
                    if resp.status >= 300:
                        raise ProberError(f"GET {url}: HTTP {resp.status}")
                    state = await resp.json(content_type=None)
        except aiohttp.ClientError as exc:
            raise ProberError(f"GET {url}: {exc}") from None
        if not state.get("enabled"):
            raise ProberError(f"Cloud-Twin's data plane at {self.twin} is off (start it with --dataplane netns)")
        return dict(state)

    def _pick(self, state: dict[str, Any], cloud: str, region: str) -> None:
        from sgtest.probers.netns import choose_client

        client = choose_client(list(state.get("clients") or []), cloud, region)
        if not client.get("host_ip"):
            raise ProberError(f"twin cloud {client.get('cloud')}/{client.get('region')} has no host link: its "
                              "public range overlaps a route of this host")
        self.info.client_ip = str(client["host_ip"])

    async def prepare(self) -> None:
        if self.twin and not self.info.client_ip:
            self._pick(await self._twin_state(), self.twin_cloud, self.twin_region)

    async def _locate(self, vm: VMTarget) -> None:
        """This host's address on the VM's own public network (the runner follows a change)."""
        if not self.twin or self.twin_cloud or not vm.system_id:
            return
        state = await self._twin_state()
        server = next((s for s in state.get("servers") or [] if s.get("server_id") == vm.system_id), None)
        if server is not None:
            self._pick(state, str(server.get("cloud", "")), str(server.get("region", "")))

    async def start(self, vm: VMTarget) -> None:
        await self._locate(vm)
        if self.listen:
            self.warnings += await self._listeners.start()
        code, out = await run_command(ssh_command(vm, listener_remote()), 30)
        if "started" not in out:
            self.warnings.append(f"could not start the VM's listeners (exit {code}): {out.strip()[:200]}")

    async def _one(self, vm: VMTarget, p: ProbeRequest) -> ProbeResult:
        started = time.perf_counter()
        if p.direction == "inbound":
            if p.proto == "tcp":
                ok, detail = await tcp_probe(vm.public_ip, int(p.port or 0), self.timeout_s)
            elif p.proto == "udp":
                ok, detail = await udp_probe(vm.public_ip, int(p.port or 0), self.timeout_s)
            else:
                _, out = await run_command(ping_command(vm.public_ip), self.timeout_s + 2)
                lines = out.strip().splitlines()
                ok, detail = "icmp_seq" in out, lines[-1] if lines else ""
        else:
            _, out = await run_command(ssh_command(vm, outbound_remote(p.proto, p.port, p.client_ip)),
                                       self.timeout_s + 15)
            ok, detail = outbound_passed(p.proto, out), out.strip()[:200]
        return ProbeResult(p.id, ok, (time.perf_counter() - started) * 1000, str(detail))

    async def probe(self, batch: ProbeBatch) -> list[ProbeResult]:
        if self.twin:       # read-your-writes: the twin answers once the last rule change is in its kernel
            await self._twin_state()
        return list(await asyncio.gather(*(self._one(batch.vm, p) for p in batch.probes)))

    async def close(self) -> None:
        await self._listeners.close()


async def client_ip_from_echo(url: str, timeout: float = 10.0) -> str:
    """Ask an echo service (CB-Spider uses ``curl ifconfig.co``) for this host's public IP."""
    import ipaddress

    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s:
        async with s.get(url, headers={"Accept": "text/plain", "User-Agent": "curl/8"}) as resp:
            text = (await resp.text()).strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ProberError(f"{url} did not answer with an IP address: {text[:80]!r}") from None
