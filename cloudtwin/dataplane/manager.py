"""The data plane's lifecycle: a namespace per ACTIVE server, kept in step with Nova and Neutron.

Topology (one twin, prefix ``ctwXXXX``)::

    <prefix>-fab   bridges only: <prefix>b#### per (cloud, region, network), <prefix>p#### per (cloud, region)
    <prefix>-vm#### one per server: eth<k> on its networks' bridges with the port's MAC and fixed IPs;
                    pub0 on the region's public bridge with the port's floating IPs, default route via
                    the client (no NAT: the floating IP is on the VM, so the client sees it as the source)
    <prefix>-cl#### one per (cloud, region): the test host outside the cloud, on the public bridge with
                    the public subnet's gateway address (Neutron's allocator never hands that out)

Nova's ``server_listeners`` and Neutron's ``sg_listeners`` mark servers dirty (plumbing, firewall or
removal); one worker applies the marks after a short debounce, in batches (``ip -batch``), so a rule
change reaches the kernel in ~0.1 s and 200 new servers cost a handful of processes per step. A
reconcile pass each second catches what no event announces (a snapshot restore, a crash, a reset).
Every kernel change happens on the worker or under the same lock, so probes see settled state.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import ipaddress
import logging
import os
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from cloudtwin.background import Background
from cloudtwin.clouds import DEFAULT_REGION_ALIAS
from cloudtwin.dataplane import cleanup, machines, metadata, responders
from cloudtwin.dataplane.conntrack import flush_here
from cloudtwin.dataplane.layout import VmLayout, port_policies, public_gateway, vm_layout
from cloudtwin.dataplane.netns import PUBLIC_IF, Names, NetnsThreads, ip_batch, ip_batch_sync, new_prefix
from cloudtwin.dataplane.nft import BREAKS, apply_here, compile_ruleset
from cloudtwin.dataplane.probe import PROTOCOLS, ProbeSpec, run_probes
from cloudtwin.ids import hostname_of

log = logging.getLogger("cloudtwin.dataplane")

VmKey = tuple[str, str, str]          # (cloud, region, server id)
Interface = tuple[str, str, str, str, str]    # (namespace, bridge, device, mac, source ip)
Relink = tuple["Vm", VmLayout, bool]           # (vm, new layout, private side changed too)
DEBOUNCE = 0.05
RECONCILE_EVERY = 1.0
MAX_PROBES = 5000
# server states after which a VM's machine must start from scratch (its processes died or rebooted)
CYCLING_STATES = ("SHUTOFF", "CRASHED", "ERROR", "REBOOT", "HARD_REBOOT")
DEFAULT_LOGIN_USER = "cb-user"
HOST_NS = ""    # the key of the host's own namespace in neighbour bookkeeping (``ip`` without ``-n``)


class DataPlaneError(RuntimeError):
    """The data plane cannot run here (not root, no nft/ip) or a request to it is malformed."""


def preflight() -> None:
    """Fail early and clearly: the data plane needs root, ``ip`` and ``nft``."""
    if os.geteuid() != 0:
        raise DataPlaneError("--dataplane netns needs root (it creates network namespaces and nftables tables)")
    missing = [tool for tool in ("ip", "nft") if shutil.which(tool) is None]
    if missing:
        raise DataPlaneError(f"--dataplane netns needs {' and '.join(missing)} (apt-get install iproute2 nftables)")



def _load_ruleset(text: str, forget: bool) -> None:
    """Load a VM's ruleset and, when it lost a rule, flush its tracked flows (on a netns worker)."""
    apply_here(text)
    if forget:
        flush_here()

@dataclass
class PublicSide:
    """A (cloud, region)'s public bridge and its client namespace."""

    cloud: str
    region: str
    index: int
    bridge: str
    ns: str
    link: str
    ip: str
    prefixlen: int
    mac: str
    responders: responders.Responders | None = None
    host_ip: str | None = None        # the host shell's address on this public network (None: not linked)
    host_link: str | None = None
    linked: bool = False              # the host link exists (the host shell reaches this network)


@dataclass
class Vm:
    key: VmKey
    server: Any
    index: int
    ns: str
    layout: VmLayout | None = None          # as applied
    links: list[str] = field(default_factory=list)       # fabric ends of eth0..
    public_link: str | None = None                       # fabric end of pub0
    public: PublicSide | None = None
    up: bool | None = None
    ruleset: str | None = None
    remote_groups: frozenset[str] = frozenset()
    responders: responders.Responders | None = None
    machine: machines.Machine | None = None
    public_ready: bool = False       # its floating IPs are plumbed (addresses, links, neighbours)
    metadata: metadata.MetadataServer | None = None


@dataclass
class Endpoint:
    ns: str
    dev: str
    mac: str


class DataPlane:
    def __init__(self, twin: Any, *, debounce: float = DEBOUNCE) -> None:
        self.twin = twin
        self.debounce = debounce
        self.names: Names | None = None
        self.threads = NetnsThreads()
        self.vms: dict[VmKey, Vm] = {}
        self.publics: dict[tuple[str, str], PublicSide] = {}
        self.bridges: dict[tuple[str, str, str], str] = {}
        self.broken: str | None = None
        self.stats: dict[str, Any] = {"batches": 0, "rulesets_applied": 0, "conntrack_flushes": 0, "vms_created": 0, "vms_removed": 0,
                                      "last_batch": None, "last_change_to_kernel_ms": None}
        self._next = {"vm": 0, "client": 0, "bridge": 0}
        self._regions: dict[int, Any] = {}
        self._want: dict[str, set[VmKey]] = {"plumb": set(), "firewall": set(), "remove": set()}
        self._marked_at: float | None = None
        self._endpoints: dict[tuple[str, str], Endpoint] = {}     # (bridge, ip) -> who answers ARP for it
        self._neigh: dict[str, dict[str, str]] = {}               # ns -> ip -> mac installed (permanent)
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.machines: machines.Machines | None = None
        self._cycled: set[VmKey] = set()
        self._worker = Background("cloudtwin-dataplane", self._work)
        self._reconciler = Background("cloudtwin-dataplane-reconcile", self._reconcile_loop)
        self._stopped = False

    # ==============================================================================================
    # start / stop
    # ==============================================================================================

    @property
    def prefix(self) -> str:
        assert self.names is not None
        return self.names.prefix

    def start(self) -> None:
        """Runs inside the event loop (``Twin.start``); the blocking steps are short and once."""
        preflight()
        cleanup.cleanup_stale()
        self.names = Names(new_prefix(cleanup.prefixes_in_use()))
        cleanup.register(self.prefix)              # registered before any namespace exists
        atexit.register(self._atexit)
        if getattr(self.twin.config, "vm_runtime", "machine") == "machine":
            self.machines = machines.Machines(self.prefix, cleanup.REGISTRY_DIR)
            self.machines.start()
        ip_batch_sync([f"netns add {self.names.fabric}"])
        ip_batch_sync(["link set lo up"], self.names.fabric)
        self.twin.region_hooks.append(self._attach)
        self.twin.public_range_hooks.append(host_routed_ranges)
        self._reconcile()
        self._worker.start()
        self._reconciler.start()
        log.info("data plane: prefix %s, fabric namespace %s", self.prefix, self.names.fabric)

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._attach in self.twin.region_hooks:
            self.twin.region_hooks.remove(self._attach)
        if host_routed_ranges in self.twin.public_range_hooks:
            self.twin.public_range_hooks.remove(host_routed_ranges)
        for region in self._regions.values():
            self._detach(region)
        self._regions.clear()
        await self._reconciler.stop()
        async with self._lock:
            await self._worker.stop()
            for vm in self.vms.values():
                if vm.responders:
                    vm.responders.close()
                if vm.metadata:
                    vm.metadata.close()
            for pub in self.publics.values():
                if pub.responders:
                    pub.responders.close()
            if self.machines is not None:
                await asyncio.get_running_loop().run_in_executor(None, self.machines.stop)
            await asyncio.get_running_loop().run_in_executor(None, cleanup.remove_prefix, self.prefix)
            self.vms.clear()
            self.publics.clear()
        self.threads.shutdown()
        atexit.unregister(self._atexit)

    def _atexit(self) -> None:
        """Last resort when the process exits without ``stop`` (an exception in the server)."""
        if not self._stopped and self.names is not None:
            if self.machines is not None:
                self.machines.stop()
            cleanup.remove_prefix(self.prefix)

    # ==============================================================================================
    # hooks: Nova and Neutron mark servers, the worker applies
    # ==============================================================================================

    def _attach(self, region: Any) -> None:
        if id(region) in self._regions:
            return
        self._regions[id(region)] = region
        region.nova.server_listeners.append(functools.partial(self._on_server, region))
        region.neutron.sg_listeners.append(functools.partial(self._on_neutron, region))

    def _detach(self, region: Any) -> None:
        for lst in (region.nova.server_listeners, region.neutron.sg_listeners):
            for fn in list(lst):
                if isinstance(fn, functools.partial) and getattr(fn.func, "__self__", None) is self:
                    lst.remove(fn)

    def _mark(self, kind: str, keys: Any) -> None:
        want = self._want[kind]
        before = len(want)
        want.update(keys)
        if len(want) != before:
            if self._marked_at is None:
                self._marked_at = time.perf_counter()
            self._idle.clear()
            self._wake.set()

    @staticmethod
    def _key(region: Any, server_id: str) -> VmKey:
        return (region.cloud.name, region.name, server_id)

    def _on_server(self, region: Any, server: Any, state: str) -> None:
        key = self._key(region, server.id)
        if state in CYCLING_STATES and key in self.vms:
            self._cycled.add(key)       # noted now: the worker may only see the state after the next one
        if state == "DELETED":
            if key in self.vms:
                self._mark("remove", [key])
        elif key in self.vms or state == "ACTIVE":
            self._mark("plumb", [key])

    def _on_neutron(self, region: Any, event: str, obj: Any) -> None:
        neutron = region.neutron
        keys: list[VmKey] = []
        kind = "firewall"
        if event.startswith("security_group_rule."):
            keys = [self._key(region, p.device_id) for p in neutron.ports_of_security_group(obj.security_group_id)
                    if p.device_id]
        elif event.startswith("port."):
            kind = "plumb"
            keys = [self._key(region, obj.device_id)] if obj.device_id else []
        elif event.startswith("floatingip."):
            kind = "plumb"
            port = neutron.ports.get(obj.port_id) if obj.port_id else None
            keys = [self._key(region, port.device_id)] if port is not None and port.device_id else []
        else:
            return
        self._mark("firewall", [k for k in keys if k in self.vms])
        if kind == "plumb":     # a port or floating IP changed: its interfaces, and remote-group members
            self._mark("plumb", keys)
            here = (region.cloud.name, region.name)
            self._mark("firewall", [k for k, vm in self.vms.items() if vm.remote_groups and k[:2] == here])

    def _server(self, key: VmKey) -> tuple[Any, Any] | None:
        """(region, server) as the twin has them now, or None when the server is gone."""
        cloud = self.twin.clouds.get(key[0])
        region = cloud.regions.get(key[1]) if cloud is not None else None
        server = region.nova.servers.get(key[2]) if region is not None else None
        if server is None or server.removed:
            return None
        return region, server

    def _powered(self, region: Any, server: Any) -> bool:
        """A running server answers; a stopped, paused or suspended one does not (Nova's power_state 1)."""
        return region.nova.life.attrs(server.state).get("power_state") == 1

    # ---- reconcile: what no event announces ------------------------------------------------------

    def _reconcile(self) -> None:
        current: dict[int, Any] = {}
        for cloud in list(self.twin.clouds.values()):
            for region in cloud.regions.values():
                current[id(region)] = region
                self._attach(region)
                for server in region.nova.servers.values():
                    key = self._key(region, server.id)
                    vm = self.vms.get(key)
                    if vm is None:
                        if server.state == "ACTIVE":
                            self._mark("plumb", [key])
                    elif vm.up != self._powered(region, server) or vm.layout != vm_layout(region.neutron, server.id):
                        self._mark("plumb", [key])
        for rid in [r for r in self._regions if r not in current]:
            self._detach(self._regions.pop(rid))
        gone = [k for k, vm in self.vms.items() if self._server(k) is None or self._server(k)[1] is not vm.server]
        self._mark("remove", gone)

    async def _reconcile_loop(self) -> None:
        while True:
            await asyncio.sleep(RECONCILE_EVERY)
            try:
                if self.machines is not None:
                    self.machines.reap()
                self._reconcile()
            except Exception:  # noqa: BLE001 - the loop must survive any state it meets
                log.exception("data plane: reconcile failed")

    # ==============================================================================================
    # the worker
    # ==============================================================================================

    async def settled(self, timeout: float = 10.0) -> bool:
        """Wait until every change made so far is in the kernel, and every machine that runs has its
        sshd listening (a probe of port 22 must meet the VM's sshd, not a VM half booted)."""
        end = time.monotonic() + timeout
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        while any(vm.machine is not None and vm.machine.running and not vm.machine.frozen
                  and not vm.machine.ssh_ready for vm in self.vms.values()):
            if time.monotonic() > end:
                return False
            await asyncio.sleep(0.01)
        return True

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.debounce)
            self._wake.clear()
            want = {k: set(v) for k, v in self._want.items()}
            for v in self._want.values():
                v.clear()
            marked, self._marked_at = self._marked_at, None
            started = time.perf_counter()
            try:
                async with self._lock:
                    await self._apply(want["remove"], want["plumb"] - want["remove"],
                                      want["firewall"] - want["remove"])
            except Exception:  # noqa: BLE001 - one bad batch must not stop the data plane
                log.exception("data plane: applying a batch failed")
            done = time.perf_counter()
            self.stats["batches"] += 1
            if marked is not None:
                self.stats["last_change_to_kernel_ms"] = round((done - marked) * 1000, 1)
            self.stats["last_batch"] = {"remove": len(want["remove"]), "plumb": len(want["plumb"]),
                                        "firewall": len(want["firewall"]), "seconds": round(done - started, 3)}
            if not any(self._want.values()):
                self._idle.set()

    async def _apply(self, remove: set[VmKey], plumb: set[VmKey], firewall: set[VmKey]) -> None:
        await self._teardown([self.vms[k] for k in remove if k in self.vms])
        fresh: list[Vm] = []
        relink: list[Relink] = []
        switch: list[Vm] = []
        for key in plumb:
            found = self._server(key)
            if found is None:
                if key in self.vms:
                    await self._teardown([self.vms[key]])
                continue
            region, server = found
            vm = self.vms.get(key)
            if vm is None:
                if server.state != "ACTIVE" and not self._powered(region, server):
                    continue
                vm = self._new_vm(key, server)
                fresh.append(vm)
            layout = vm_layout(region.neutron, server.id)
            up = self._powered(region, server)
            if vm.layout != layout:
                relink.append((vm, layout, vm.layout is None or vm.layout.private != layout.private))
                vm.up = up
            elif vm.up != up:
                vm.up = up
                switch.append(vm)
        if fresh or relink:
            await self._plumb(fresh, relink)
        if switch:
            await asyncio.gather(*(ip_batch(self._vm_lines(vm, addresses=False), vm.ns) for vm in switch))
        targets = {vm.key for vm, _, _ in relink} | {k for k in firewall if k in self.vms}
        await self._firewall([self.vms[k] for k in targets if k in self.vms])
        if self.machines is not None:
            for key in plumb:
                vm = self.vms.get(key)
                found = self._server(key)
                if vm is not None and found is not None:
                    await self._power(vm, *found)

    def _new_vm(self, key: VmKey, server: Any) -> Vm:
        assert self.names is not None
        i = self._next["vm"]
        self._next["vm"] += 1
        vm = Vm(key=key, server=server, index=i, ns=self.names.vm_ns(i))
        self.vms[key] = vm
        return vm

    # ---- plumbing -----------------------------------------------------------------------------------

    def _bridge(self, cloud: str, region: str, network_id: str, new: list[str]) -> str:
        assert self.names is not None
        key = (cloud, region, network_id)
        name = self.bridges.get(key)
        if name is None:
            name = self.bridges[key] = self.names.bridge(self._next["bridge"])
            self._next["bridge"] += 1
            new.append(name)
        return name

    def _public(self, cloud: str, region_name: str, new: list[PublicSide]) -> PublicSide | None:
        assert self.names is not None
        pub = self.publics.get((cloud, region_name))
        if pub is not None:
            return pub
        c = self.twin.clouds.get(cloud)
        region = c.regions.get(region_name) if c is not None else None
        if region is None:
            return None
        ip, plen, host_ip = public_gateway(region.neutron)
        i = self._next["client"]
        self._next["client"] += 1
        pub = PublicSide(cloud, region_name, i, self.names.public_bridge(i), self.names.client_ns(i),
                         self.names.client_link(i), ip, plen, self.names.client_mac(i), host_ip=host_ip,
                         host_link=self.names.host_link(i) if host_ip else None)
        self.publics[(cloud, region_name)] = pub
        new.append(pub)
        return pub

    def _neigh_line(self, ns: str, ip: str, mac: str, dev: str) -> list[str]:
        have = self._neigh.setdefault(ns, {})
        if have.get(ip) == mac:
            return []
        have[ip] = mac
        return [f"neigh replace {ip} lladdr {mac} dev {dev} nud permanent"]

    def _vm_lines(self, vm: Vm, *, addresses: bool, private: bool = True) -> list[str]:
        """The VM namespace's side: addresses (new links only), link state, route and client neighbour."""
        assert vm.layout is not None and self.names is not None
        state = "up" if vm.up else "down"
        lines = ["link set lo up", f"addr add {metadata.METADATA_ADDRESS}/32 dev lo"] if addresses and private else []
        self._neigh.pop(vm.ns, None)          # a link that went down or was re-made lost its neighbours
        for k, nic in enumerate(vm.layout.nics if private else ()):
            if addresses:
                for ip, plen in nic.addresses:
                    v6 = ipaddress.ip_address(ip).version == 6
                    lines.append(f"addr add {ip}/{plen} dev eth{k}" + (" nodad" if v6 else ""))
            lines.append(f"link set eth{k} {state}")
        pub = vm.public
        if pub is not None:
            if addresses:
                lines.extend(f"addr add {ip}/{pub.prefixlen} dev {PUBLIC_IF}" for ip in self._floating(vm))
            lines.append(f"link set {PUBLIC_IF} {state}")
            if vm.up:
                lines.append(f"route replace default via {pub.ip} dev {PUBLIC_IF}")
                lines.extend(self._neigh_line(vm.ns, pub.ip, pub.mac, PUBLIC_IF))
        return lines

    def _floating(self, vm: Vm) -> list[str]:
        """The VM's floating IPs, minus one that would collide with the client's address."""
        pub = vm.public
        return [ip for ip in (vm.layout.floating if vm.layout else ()) if pub is None or ip != pub.ip]

    def _forget(self, vm: Vm, *, private: bool = True) -> list[str]:
        """Drop ``vm``'s endpoints (all, or the public ones); the client-namespace lines that remove its
        floating IPs' neighbours."""
        lines = []
        if vm.layout is not None:
            for nic in vm.layout.nics if private else ():
                bridge = self.bridges.get((vm.key[0], vm.key[1], nic.network_id))
                for ip, _ in nic.addresses:
                    self._endpoints.pop((bridge or "", ip), None)
            if vm.public is not None:
                client = self._neigh.get(vm.public.ns, {})
                for ip in self._floating(vm):
                    self._endpoints.pop((vm.public.bridge, ip), None)
                    if client.pop(ip, None) is not None:
                        lines.append(f"neigh del {ip} dev eth0")
        if private:
            self._neigh.pop(vm.ns, None)
        return lines

    def _unlink(self, vm: Vm, *, private: bool, fabric: list[str], client_lines: dict[str, list[str]]) -> None:
        """Queue the removal of ``vm``'s veths (all, or the public one) and of its client neighbours."""
        if vm.public is not None:
            pub = vm.public
            if pub.host_link:    # the host forgets the floating IPs' MAC too (a reused address is another VM)
                host = self._neigh.get(HOST_NS, {})
                client_lines.setdefault(HOST_NS, []).extend(
                    f"neigh del {ip} dev {pub.host_link}" for ip in self._floating(vm) if host.pop(ip, None))
            client_lines.setdefault(pub.ns, []).extend(self._forget(vm, private=private))
        else:
            self._forget(vm, private=private)
        links = vm.links if private else []
        if vm.public_link:
            links = [*links, vm.public_link]
        fabric.extend(f"link delete {link}" for link in links)
        if private:
            vm.links = []
        vm.public_link = None

    async def _plumb(self, fresh: list[Vm], relink: list[Relink]) -> None:
        """Make the links of new VMs and re-make changed ones: everything when the private side changed,
        only the public veth when just floating IPs did."""
        assert self.names is not None
        new_bridges: list[str] = []
        new_publics: list[PublicSide] = []
        fabric: list[str] = []
        client_lines: dict[str, list[str]] = {}
        host_neigh: list[tuple[PublicSide, str, str]] = []
        for vm, layout, full in relink:
            vm.public_ready = False
            self._unlink(vm, private=full, fabric=fabric, client_lines=client_lines)
            vm.layout = layout
            cloud, region, _ = vm.key
            vm.public = self._public(cloud, region, new_publics) if layout.floating else None
            for k, nic in enumerate(layout.nics if full else ()):
                bridge = self._bridge(cloud, region, nic.network_id, new_bridges)
                link = self.names.vm_link(vm.index, k)
                fabric.append(f"link add name {link} type veth peer name eth{k} address {nic.mac} netns {vm.ns}")
                fabric.append(f"link set {link} master {bridge} up")
                vm.links.append(link)
                for ip, _ in nic.addresses:
                    self._endpoints[(bridge, ip)] = Endpoint(vm.ns, f"eth{k}", nic.mac)
            if vm.public is not None:
                pub, mac = vm.public, self.names.vm_public_mac(vm.index)
                vm.public_link = self.names.vm_public_link(vm.index)
                fabric.append(f"link add name {vm.public_link} type veth peer name {PUBLIC_IF} address {mac} "
                              f"netns {vm.ns}")
                fabric.append(f"link set {vm.public_link} master {pub.bridge} up")
                for ip in self._floating(vm):
                    self._endpoints[(pub.bridge, ip)] = Endpoint(vm.ns, PUBLIC_IF, mac)
                    client_lines.setdefault(pub.ns, []).extend(self._neigh_line(pub.ns, ip, mac, "eth0"))
                    host_neigh.append((pub, ip, mac))
        await self._make_publics(new_publics)
        for pub, ip, mac in host_neigh:        # after the host links exist (or were refused)
            if pub.host_link:
                client_lines.setdefault(HOST_NS, []).extend(self._neigh_line(HOST_NS, ip, mac, pub.host_link))
        # namespaces, then the firewalls of new VMs before any link exists (default drop from the first
        # packet), then bridges and veths in the fabric in one process, then each namespace's own side
        await ip_batch([f"netns add {vm.ns}" for vm in fresh])
        await self._firewall(fresh)
        head = [line for b in new_bridges for line in (f"link add {b} type bridge", f"link set {b} up")]
        await ip_batch(head + fabric, self.names.fabric)
        jobs = [ip_batch(self._vm_lines(vm, addresses=True, private=full), vm.ns) for vm, _, full in relink]
        jobs += [ip_batch(lines, ns) for ns, lines in client_lines.items() if lines]
        await asyncio.gather(*jobs)
        for vm, _, _ in relink:
            vm.public_ready = bool(vm.public is not None and self._floating(vm))
        await asyncio.gather(*(self._serve(vm) for vm in fresh))
        self.stats["vms_created"] += len(fresh)

    async def _serve(self, owner: Vm | PublicSide) -> None:
        banner = not (isinstance(owner, Vm) and self.machines is not None)   # a machine runs a real sshd
        try:
            sockets = await self.threads.run(owner.ns, responders.open_sockets, banner)
            owner.responders = await responders.serve(sockets)
            if isinstance(owner, Vm):      # Nova's metadata service at 169.254.169.254, inside the VM
                sock = await self.threads.run(owner.ns, metadata.open_socket)
                owner.metadata = await metadata.serve(sock, functools.partial(self._server, owner.key))
        except OSError as exc:
            log.warning("data plane: responders in %s failed: %s", owner.ns, exc)

    async def _teardown(self, vms: list[Vm]) -> None:
        if not vms:
            return
        assert self.names is not None
        fabric: list[str] = []
        client_lines: dict[str, list[str]] = {}
        if self.machines is not None:
            gone = [vm.ns for vm in vms if vm.machine is not None]
            await asyncio.get_running_loop().run_in_executor(None, lambda: [self.machines.remove(ns) for ns in gone])
        for vm in vms:
            if vm.responders:
                vm.responders.close()
            if vm.metadata:
                vm.metadata.close()
            # the veths are not deleted one by one (~20 ms of kernel time each): deleting the namespace
            # destroys them in the kernel's batched, asynchronous namespace cleanup
            self._unlink(vm, private=True, fabric=[], client_lines=client_lines)
            self.vms.pop(vm.key, None)
        used = {self.bridges.get((v.key[0], v.key[1], nic.network_id))
                for v in self.vms.values() if v.layout for nic in v.layout.nics}
        for key, bridge in list(self.bridges.items()):
            if bridge not in used:
                fabric.append(f"link delete {bridge}")
                del self.bridges[key]
        await ip_batch(fabric, self.names.fabric)
        await asyncio.gather(*(ip_batch(lines, ns) for ns, lines in client_lines.items()))
        await ip_batch([f"netns delete {vm.ns}" for vm in vms])
        self.stats["vms_removed"] += len(vms)

    # ---- machines: a VM's processes follow its server's power state ----------------------------------

    async def _power(self, vm: Vm, region: Any, server: Any) -> None:
        """Boot, freeze, thaw, kill or reboot the VM's machine to match Nova's view of the server."""
        assert self.machines is not None
        want = machine_power(region.nova.life.attrs(server.state))
        cycled = vm.key in self._cycled
        self._cycled.discard(vm.key)
        m = vm.machine
        if m is None:
            if want != "run":
                return
            spec = self._machine_spec(region, server, vm)
            name = vm.ns.rsplit("-", 1)[-1]
            try:
                m = vm.machine = await asyncio.to_thread(self.machines.prepare, vm.ns, name, spec)
            except (OSError, machines.MachineError) as exc:
                log.warning("data plane: machine of %s (%s) cannot be made: %s", vm.ns, server.id, exc)
                return
        if cycled or want == "off":
            await asyncio.to_thread(self.machines.power_off, m)
        if want == "run":
            if m.frozen:
                self.machines.freeze(m, False)
            if not m.running:
                self.machines.boot(m)       # on the loop's thread: the tree dies with the thread that forks it
        elif want == "freeze":
            self.machines.freeze(m, True)

    def _machine_spec(self, region: Any, server: Any, vm: Vm) -> machines.MachineSpec:
        kp = metadata.keypair(region, server)     # the key the metadata service hands out, too
        keys = [kp.public_key] if kp is not None else []
        image = region.glance.find(server.project_id, server.image_id) if server.image_id else None
        if image is None:      # booted from a volume: the root volume remembers its image
            for att in region.cinder.attachments_of_server(server.id):
                vol = region.cinder.volumes.get(att.volume_id)
                if att.boot_index == 0 and vol is not None and vol.image_metadata.get("image_id"):
                    image = region.glance.find(server.project_id, vol.image_metadata["image_id"])
        layout = vm.layout or vm_layout(region.neutron, server.id)
        return machines.MachineSpec(
            server_id=server.id, hostname=hostname_of(server.name),
            login_user=(getattr(image, "login_user", "") or DEFAULT_LOGIN_USER), public_keys=keys,
            vcpus=server.vcpus, ram_mib=server.ram, user_data=server.user_data,
            addresses=[*layout.fixed, *(layout.floating or ())])

    def _vm_by_server(self, server_id: str) -> Vm:
        vm = next((v for v in self.vms.values() if v.key[2] == server_id), None)
        if vm is None:
            raise DataPlaneError(f"server {server_id} has no data-plane VM (not ACTIVE, or not known)")
        return vm

    def console(self, cloud: str, region: str, server_id: str) -> str | None:
        """The VM's console log (its boot and cloud-init output), None when it has no machine."""
        vm = self.vms.get((cloud, region, server_id))
        if vm is None or vm.machine is None or self.machines is None:
            return None
        return self.machines.console(vm.machine)

    def vm_info(self, server_id: str) -> dict[str, Any]:
        vm = self._vm_by_server(server_id)
        m = vm.machine
        return {"server_id": server_id, "name": getattr(vm.server, "name", ""), "namespace": vm.ns,
                "cloud": vm.key[0], "region": vm.key[1],
                "login_user": m.spec.login_user if m else None,
                "addresses": {"fixed": list(vm.layout.fixed) if vm.layout else [], "floating": self._floating(vm)},
                "ssh_ready": bool(m and m.ssh_ready), "running": bool(m and m.running),
                "frozen": bool(m and m.frozen), "boots": m.boots if m else 0,
                "memory_bytes": m.cgroup.memory_bytes() if m else None,
                "cpu_usec": m.cgroup.cpu_usec() if m else None,
                "host_reachable": bool(vm.public and vm.public.linked and vm.public_ready)}

    async def exec_in_vm(self, server_id: str, argv: list[str], *, stdin: bytes | None = None,
                         timeout: float = 30.0) -> dict[str, Any]:
        """Run a command as root inside the VM (no SSH needed): ``{exit_code, stdout, stderr, duration_ms}``."""
        if self.machines is None:
            raise DataPlaneError("this twin's VMs run no processes (--vm-runtime network)")
        vm = self._vm_by_server(server_id)
        if vm.machine is None:
            raise DataPlaneError(f"server {server_id} has no machine yet")
        try:
            return await self.machines.exec(vm.machine, argv, stdin=stdin, timeout=timeout)
        except machines.MachineError as exc:
            raise DataPlaneError(str(exc)) from None

    # ---- firewall --------------------------------------------------------------------------------

    async def _firewall(self, vms: list[Vm]) -> None:
        assert self.names is not None
        table = self.names.table

        async def one(vm: Vm) -> None:
            found = self._server(vm.key)
            if found is None:
                return
            region, server = found
            layout = vm.layout or vm_layout(region.neutron, server.id)
            policies = port_policies(region.neutron, layout)
            text = compile_ruleset(table, policies, self.broken)
            if text == vm.ruleset:
                return
            # a rule went away: forget the flows it let in, as Neutron does (conntrack.py)
            forget = vm.ruleset is not None and not set(vm.ruleset.splitlines()) <= set(text.splitlines())
            try:
                await self.threads.run(vm.ns, _load_ruleset, text, forget)
            except (OSError, RuntimeError) as exc:
                log.warning("data plane: firewall of %s (%s) failed: %s", vm.ns, vm.key[2], exc)
                return
            vm.ruleset = text
            if forget:
                self.stats["conntrack_flushes"] += 1
            vm.remote_groups = frozenset(r.remote_group for p in policies for r in p.rules if r.remote_group)
            self.stats["rulesets_applied"] += 1

        await asyncio.gather(*(one(vm) for vm in vms))

    # ==============================================================================================
    # what the admin API calls
    # ==============================================================================================

    def status(self) -> dict[str, Any]:
        clients = []
        for cloud in self.twin.clouds.values():
            for rname, region in cloud.regions.items():
                pub = self.publics.get((cloud.name, rname))
                ip, _, host_ip = public_gateway(region.neutron)
                clients.append({"cloud": cloud.name, "region": rname, "ip": pub.ip if pub else ip,
                                "namespace": pub.ns if pub else None, "ready": pub is not None,
                                # the host shell's address on the region's public network (linked when
                                # the region's first floating IP is plumbed)
                                "host_ip": pub.host_ip if pub else host_ip,
                                "host_link": pub.host_link if pub else None})
        servers = [{"cloud": vm.key[0], "region": vm.key[1], "server_id": vm.key[2], "namespace": vm.ns,
                    "up": bool(vm.up), "fixed_ips": list(vm.layout.fixed) if vm.layout else [],
                    "floating_ips": self._floating(vm)} for vm in self.vms.values()]
        return {"enabled": True, "prefix": self.prefix, "fabric": self.names.fabric if self.names else None,
                "vms": len(self.vms), "clients": clients, "servers": servers, "break": self.broken,
                "pending": not self._idle.is_set(), "stats": dict(self.stats),
                "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}

    async def set_break(self, mode: str | None) -> dict[str, Any]:
        if mode is not None and mode not in BREAKS:
            raise DataPlaneError(f"break must be one of {', '.join(BREAKS)} or null")
        self.broken = mode
        self._mark("firewall", list(self.vms))
        await self.settled()
        return {"break": self.broken, "vms": len(self.vms)}

    def _find_vm(self, ip: str, cloud: str | None, region: str | None) -> Vm | None:
        floating = fixed = None
        for vm in self.vms.values():
            if vm.layout is None or (cloud and vm.key[0] != cloud) or (region and vm.key[1] != region):
                continue
            if ip in self._floating(vm):
                floating = floating or vm
            elif ip in vm.layout.fixed:
                fixed = fixed or vm
        return floating or fixed

    def _canonical(self, cloud: str | None, region: str | None) -> tuple[str | None, str | None]:
        """Cloud names as the twin keys them ("Default" is "default"), region aliases resolved."""
        if not cloud:
            return None, (None if region == DEFAULT_REGION_ALIAS else region)
        c = self.twin.cloud(cloud, create=False)
        if c is None:
            return cloud, region
        r = c.region(region) if region else None
        return c.name, (r.name if r is not None else region)

    def _client_for(self, to: str, cloud: str | None, region: str | None,
                    new: list[PublicSide]) -> PublicSide | str:
        if not cloud:
            vm = self._find_vm(to, None, region)
            if vm is not None:
                cloud, region = vm.key[0], vm.key[1]
            else:
                every = [(c.name, r) for c in self.twin.clouds.values() for r in c.regions
                         if not region or r == region]
                if len(every) != 1:
                    return "give cloud and region: no data-plane VM has that address"
                cloud, region = every[0]
        if not region:
            c = self.twin.clouds.get(cloud)
            if c is None:
                return f"cloud {cloud!r} not found"
            region = c.profile.default_region
        pub = self._public(cloud, region, new)
        return pub if pub is not None else f"region {region!r} of cloud {cloud!r} not found"

    async def probe(self, body: Any) -> dict[str, Any]:
        timeout_ms, raw = _parse_probe_body(body)
        await self.settled()
        specs: list[ProbeSpec] = []
        async with self._lock:
            new_publics: list[PublicSide] = []
            sources: list[tuple[list[Interface], str]] = []
            for p in raw:
                cloud, region = self._canonical(p.get("cloud"), p.get("region"))
                spec = ProbeSpec(p["id"], None, p["to"], p["proto"], p.get("port"))
                if p["from"] == "vm":
                    vm = self._find_vm(p["vm_ip"], cloud, region)
                    if vm is None:
                        spec.error = f"no data-plane VM has address {p['vm_ip']}"
                    else:
                        spec.namespace = vm.ns
                        sources.append((self._interfaces(vm), p["to"]))
                else:
                    pub = self._client_for(p["to"], cloud, region, new_publics)
                    if isinstance(pub, str):
                        spec.error = pub
                    else:
                        spec.namespace = pub.ns
                        sources.append(([(pub.ns, pub.bridge, "eth0", pub.mac, pub.ip)], p["to"]))
                specs.append(spec)
            await self._make_publics(new_publics)
            await self._warm(sources)
        results = await run_probes(self.threads, specs, timeout_ms / 1000)
        return {"results": [r.public() for r in results], "timeout_ms": timeout_ms}

    def _interfaces(self, vm: Vm) -> list[Interface]:
        """(ns, bridge, dev, mac, source ip) of every interface of ``vm``."""
        assert self.names is not None
        out = []
        if vm.layout is None:
            return out
        for k, nic in enumerate(vm.layout.nics):
            bridge = self.bridges.get((vm.key[0], vm.key[1], nic.network_id), "")
            v4 = [ip for ip, _ in nic.addresses if ipaddress.ip_address(ip).version == 4]
            if v4:
                out.append((vm.ns, bridge, f"eth{k}", nic.mac, v4[0]))
        floating = self._floating(vm)
        if vm.public is not None and floating:
            out.append((vm.ns, vm.public.bridge, PUBLIC_IF, self.names.vm_public_mac(vm.index), floating[0]))
        return out

    async def _make_publics(self, pubs: list[PublicSide]) -> None:
        """Public bridges and their client namespaces (made once per cloud region, on first need)."""
        assert self.names is not None
        if not pubs:
            return
        lines: list[str] = []
        for p in pubs:
            lines += [f"link add {p.bridge} type bridge", f"link set {p.bridge} up",
                      f"link add name {p.link} type veth peer name eth0 address {p.mac} netns {p.ns}",
                      f"link set {p.link} master {p.bridge} up"]
            self._endpoints[(p.bridge, p.ip)] = Endpoint(p.ns, "eth0", p.mac)
        host: list[str] = []
        taken = await _host_routes()
        for p in pubs:
            net = ipaddress.ip_network(f"{p.ip}/{p.prefixlen}", strict=False)
            if p.host_ip is None or any(net.overlaps(t) for t in taken):
                if p.host_ip is not None:
                    log.warning("data plane: %s of %s/%s is already routed on this host: no host link",
                                net, p.cloud, p.region)
                p.host_ip = p.host_link = None
                continue
            taken.append(net)
            p.host_link = self.names.host_link(p.index)
            peer = self.names.host_peer(p.index)
            lines += [f"link add name {peer} type veth peer name {p.host_link} netns {os.getpid()}",
                      f"link set {peer} master {p.bridge} up"]
            host += [f"addr add {p.host_ip}/{p.prefixlen} dev {p.host_link}", f"link set {p.host_link} up"]
        await ip_batch([f"netns add {p.ns}" for p in pubs])
        await ip_batch(lines, self.names.fabric)
        await ip_batch(host)
        for p in pubs:
            p.linked = p.host_link is not None
        await asyncio.gather(*(ip_batch(["link set lo up", f"addr add {p.ip}/{p.prefixlen} dev eth0",
                                         "link set eth0 up"], p.ns) for p in pubs))
        await asyncio.gather(*(self._serve(p) for p in pubs))

    async def _warm(self, sources: list[tuple[list[Interface], str]]) -> None:
        """Permanent neighbour entries for both ends of every probe path, so a 100 ms timeout never
        includes ARP resolution (and never misclassifies an allowed probe)."""
        lines: dict[str, list[str]] = {}
        for interfaces, to in sources:
            for ns, bridge, dev, mac, src_ip in interfaces:
                dst = self._endpoints.get((bridge, to))
                if dst is None or dst.ns == ns:
                    continue
                lines.setdefault(ns, []).extend(self._neigh_line(ns, to, dst.mac, dev))
                lines.setdefault(dst.ns, []).extend(self._neigh_line(dst.ns, src_ip, mac, dst.dev))
                break
        await asyncio.gather(*(ip_batch(v, ns) for ns, v in lines.items() if v))


async def _host_routes() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Every destination the host already routes, except the default route: a public range that
    overlaps one gets no host link (the twin never shadows a real route)."""
    proc = await asyncio.create_subprocess_exec("ip", "-j", "route", "show", "table", "all",
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out, _ = await proc.communicate()
    return _parse_routes(out)


def host_routed_ranges() -> list[str]:
    """The same, synchronously, for the twin's public-range allocator (another twin's ranges included)."""
    out = subprocess.run(["ip", "-j", "route", "show", "table", "all"], capture_output=True).stdout
    return [str(n) for n in _parse_routes(out) if n.version == 4]


def _parse_routes(out: bytes) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    import json

    nets = []
    try:
        routes = json.loads(out or b"[]")
    except ValueError:
        routes = []
    for r in routes:
        dst = r.get("dst", "default")
        if dst in ("default", "0.0.0.0/0", "::/0") or r.get("type") in ("broadcast", "local", "multicast"):
            continue
        try:
            nets.append(ipaddress.ip_network(dst, strict=False))
        except ValueError:
            continue
    return nets


def machine_power(attrs: dict[str, Any]) -> str:
    """What a server's Nova state asks of its machine: ``run``, ``freeze``, ``off`` or ``keep`` (a
    transition under way keeps what it has until its end state)."""
    vm_state, task = attrs.get("vm_state"), attrs.get("task_state")
    if task in ("reboot_started", "reboot_started_hard"):
        return "off"
    if vm_state in ("stopped", "error", "deleted"):
        return "off"
    if vm_state in ("suspended", "paused"):
        return "keep" if task else "freeze"
    if vm_state == "active":
        return "keep" if task else "run"
    return "keep"


def _parse_probe_body(body: Any) -> tuple[int, list[dict[str, Any]]]:
    if not isinstance(body, dict) or not isinstance(body.get("probes"), list):
        raise DataPlaneError('body: {"timeout_ms": 300, "probes": [{"id", "from", "to", "proto", "port"}]}')
    timeout_ms = body.get("timeout_ms", 300)
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, (int, float)) or not 1 <= timeout_ms <= 30_000:
        raise DataPlaneError("timeout_ms must be a number from 1 to 30000")
    probes = body["probes"]
    if len(probes) > MAX_PROBES:
        raise DataPlaneError(f"at most {MAX_PROBES} probes per request")
    out = []
    for n, p in enumerate(probes):
        where = f"probes[{n}]"
        if not isinstance(p, dict):
            raise DataPlaneError(f"{where} must be an object")
        pid = p.get("id", str(n))
        if not isinstance(pid, (str, int)) or isinstance(pid, bool):
            raise DataPlaneError(f"{where}.id must be a string")
        src = p.get("from")
        if src not in ("client", "vm"):
            raise DataPlaneError(f"{where}.from must be 'client' or 'vm'")
        proto = str(p.get("proto", "")).lower()
        if proto not in PROTOCOLS:
            raise DataPlaneError(f"{where}.proto must be one of {', '.join(PROTOCOLS)}")
        for name in ("to", *(("vm_ip",) if src == "vm" else ())):
            try:
                ipaddress.ip_address(p.get(name) if isinstance(p.get(name), str) else "")
            except ValueError:
                raise DataPlaneError(f"{where}.{name} must be an IP address") from None
        port = p.get("port")
        if proto in ("tcp", "udp"):
            if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
                raise DataPlaneError(f"{where}.port must be 1-65535 for {proto}")
        for name in ("cloud", "region"):
            if p.get(name) is not None and not isinstance(p.get(name), str):
                raise DataPlaneError(f"{where}.{name} must be a string")
        out.append({**p, "id": str(pid), "proto": proto, "port": port if proto != "icmp" else None})
    return int(timeout_ms), out
