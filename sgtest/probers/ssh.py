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
    """TCP 1000 and UDP 2000 on this host, the targets of the outbound probes."""

    def __init__(self) -> None:
        self.server: asyncio.AbstractServer | None = None
        self.udp: asyncio.DatagramTransport | None = None

    async def start(self) -> list[str]:
        problems = []
        try:
            self.server = await asyncio.start_server(lambda r, w: w.close(), "0.0.0.0", 1000)
        except OSError as exc:
            problems.append(f"TCP 1000: {exc.strerror or exc}")
        try:
            self.udp, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=("0.0.0.0", 2000))
        except OSError as exc:
            problems.append(f"UDP 2000: {exc.strerror or exc}")
        return problems

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        if self.udp is not None:
            self.udp.close()


class SshProber:
    def __init__(self, client_ip: str, *, timeout_s: float = float(WAIT_S), listen: bool = True) -> None:
        if not client_ip:
            raise ProberError("the ssh prober needs this host's public IP: --client-ip (or --client-ip-echo URL)")
        self.info = ProberInfo("ssh", SkipPolicy.cbspider(), client_ip)
        self.timeout_s = timeout_s
        self.listen = listen
        self._listeners = _LocalListeners()
        self.warnings: list[str] = []

    async def prepare(self) -> None:
        return None

    async def start(self, vm: VMTarget) -> None:
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
