"""The Cloud-Twin data plane (``--dataplane netns``): servers become network namespaces whose nftables
rules follow their security groups, probed through ``/_twin/dataplane/probe`` the way a security-group
suite does (client -> VM and VM -> client, TCP 22 / TCP 1000 / UDP 2000 / ICMP).

The compiler tests run anywhere; everything else needs root, iproute2 and nftables and is skipped with
the reason otherwise, or fails when SPIDERTWIN_REQUIRE_ROOT_TESTS=1 (CI).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from cloudtwin.clouds import TwinConfig
from cloudtwin.dataplane.nft import PortPolicy, RuleSpec, compile_ruleset, render_rule
from spider_helpers import TwinSubprocess, require_root_dataplane
from twin_helpers import ThreadedTwin, sdk_connect

REPO = Path(__file__).resolve().parents[2]
FAST = 0.05


def _require_root() -> None:
    require_root_dataplane()


@pytest.fixture
def root() -> None:
    _require_root()


def namespaces(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(prefix + "-")]


# ---------------------------------------------------------------------------------------------------
# the compiler (no root needed)
# ---------------------------------------------------------------------------------------------------

def test_rules_render_like_neutron_semantics():
    tcp22 = RuleSpec("ingress", 4, 6, 22, 22)
    assert render_rule(tcp22) == "meta nfproto ipv4 meta l4proto 6 th dport 22 ct state new accept"
    assert render_rule(RuleSpec("ingress", 4, 17, 1, 65535)) == \
        "meta nfproto ipv4 meta l4proto 17 th dport 1-65535 ct state new accept"
    assert render_rule(RuleSpec("egress", 4, None)) == "meta nfproto ipv4 ct state new accept"      # ALL
    assert render_rule(RuleSpec("ingress", 4, 1)) == "meta nfproto ipv4 meta l4proto icmp ct state new accept"
    assert render_rule(RuleSpec("ingress", 4, 1, 8, 0)) == \
        "meta nfproto ipv4 meta l4proto icmp icmp type 8 icmp code 0 ct state new accept"
    assert render_rule(RuleSpec("ingress", 6, 1)) == "meta nfproto ipv6 meta l4proto icmpv6 ct state new accept"
    one = RuleSpec("ingress", 4, 6, 1000, 1000, remote=("4.5.6.7/32",), prefix="4.5.6.7/32")
    assert "ip saddr 4.5.6.7/32" in render_rule(one)
    assert "ip daddr 10.0.0.0/8" in render_rule(RuleSpec("egress", 4, None, remote=("10.0.0.0/8",)))
    assert "saddr" not in render_rule(one, broken="cidr"), "the broken compiler ignores the prefix"
    group = RuleSpec("ingress", 4, 6, 22, 22, remote=("10.0.0.5", "10.0.0.6"), remote_group="g")
    assert "ip saddr { 10.0.0.5, 10.0.0.6 }" in render_rule(group, broken="cidr")
    assert render_rule(RuleSpec("ingress", 4, 6, 22, 22, remote=(), remote_group="g")) is None


def test_ruleset_is_stateful_default_drop_and_atomic():
    policy = PortPolicy(0, ("eth0",), ("203.0.113.7",), True, (RuleSpec("ingress", 4, 6, 22, 22),))
    text = compile_ruleset("ctw0001", [policy])
    lines = [line.strip() for line in text.splitlines()]
    assert lines[:3] == ["table inet ctw0001", "delete table inet ctw0001", "table inet ctw0001 {"]
    assert lines.count("ct state established,related accept") == 2
    assert lines.count("type filter hook input priority filter; policy drop;") == 1
    assert lines.count("type filter hook output priority filter; policy drop;") == 1
    assert 'iifname "eth0" jump port0_in' in lines and "ip daddr 203.0.113.7 jump port0_in" in lines
    assert "ip saddr 203.0.113.7 jump port0_out" in lines
    out_chain = text.split("chain port0_out {")[1].split("}")[0]
    assert "accept" not in out_chain, "no egress rule: all new egress is dropped"
    assert "established" not in compile_ruleset("ctw0001", [policy], broken="stateful")
    open_port = PortPolicy(0, ("eth0", "pub0"), (), False, ())
    text = compile_ruleset("ctw0001", [open_port])
    assert "chain port0_in {\n\t\taccept" in text, "port security off"
    assert 'iifname "pub0" jump port0_in' in text and 'oifname "pub0" jump port0_out' in text


# ---------------------------------------------------------------------------------------------------
# a twin with the data plane, driven through openstacksdk and the admin API
# ---------------------------------------------------------------------------------------------------

class Lab:
    """One network, one security group, servers with floating IPs; probes through the admin API."""

    def __init__(self, twin: ThreadedTwin, cloud: str) -> None:
        self.twin = twin
        self.url = twin.url
        self.conn = sdk_connect(twin.url, cloud=cloud, project="sg")
        self.cloud = cloud
        self.net = self.conn.network.create_network(name="sg-net")
        self.conn.network.create_subnet(network_id=self.net.id, cidr="192.168.1.0/24", ip_version=4)
        self.public = next(n for n in self.conn.network.networks() if n.name == "public")
        self.flavor = next(f for f in self.conn.compute.flavors() if f.name == "m1.small")
        self.image = next(i for i in self.conn.image.images() if i.name == "ubuntu-22.04")

    def group(self, name: str, *rules: dict[str, Any]) -> Any:
        sg = self.conn.network.create_security_group(name=name)
        for rule in rules:
            self.rule(sg, **rule)
        return sg

    def rule(self, sg: Any, **spec: Any) -> Any:
        spec.setdefault("direction", "ingress")
        spec.setdefault("ethertype", "IPv4")
        return self.conn.network.create_security_group_rule(security_group_id=sg.id, **spec)

    def drop_rules(self, sg: Any, **match: Any) -> None:
        for rule in self.conn.network.security_group_rules(security_group_id=sg.id):
            if all(getattr(rule, k) == v for k, v in match.items()):
                self.conn.network.delete_security_group_rule(rule)

    def server(self, name: str, sg: Any, floating: bool = True) -> tuple[Any, str]:
        s = self.conn.compute.create_server(name=name, flavor_id=self.flavor.id, image_id=self.image.id,
                                            networks=[{"uuid": self.net.id}], security_groups=[{"name": sg.name}])
        s = self.conn.compute.wait_for_server(s, status="ACTIVE", interval=0.05, wait=30)
        port = next(self.conn.network.ports(device_id=s.id))
        if not floating:
            return s, port.fixed_ips[0]["ip_address"]
        fip = self.conn.network.create_ip(floating_network_id=self.public.id, port_id=port.id)
        return s, fip.floating_ip_address

    @property
    def client_ip(self) -> str:
        status = admin(self.url, "GET", "/dataplane")
        return next(c["ip"] for c in status["clients"] if c["cloud"] == self.cloud)

    def probes(self, probes: list[dict[str, Any]], timeout_ms: int = 300) -> dict[str, dict[str, Any]]:
        for p in probes:
            p.setdefault("cloud", self.cloud)
        out = admin(self.url, "POST", "/dataplane/probe", {"timeout_ms": timeout_ms, "probes": probes})
        return {r["id"]: r for r in out["results"]}

    def eight(self, ip: str) -> str:
        """The suite's eight probes as ``pass``/``fail`` words: 4 inbound | 4 outbound."""
        client = self.client_ip
        spec = [("I22", "client", "tcp", 22), ("I1000", "client", "tcp", 1000), ("IUDP", "client", "udp", 2000),
                ("IICMP", "client", "icmp", None), ("O22", "vm", "tcp", 22), ("O1000", "vm", "tcp", 1000),
                ("OUDP", "vm", "udp", 2000), ("OICMP", "vm", "icmp", None)]
        probes = []
        for pid, src, proto, port in spec:
            p: dict[str, Any] = {"id": pid, "from": src, "proto": proto, "port": port}
            p.update({"to": ip} if src == "client" else {"vm_ip": ip, "to": client})
            probes.append(p)
        res = self.probes(probes)
        words = ["pass" if res[pid]["ok"] else "fail" for pid, *_ in spec]
        return " ".join(words[:4]) + " | " + " ".join(words[4:])


def admin(url: str, method: str, path: str, body: Any = None) -> Any:
    r = requests.request(method, url + "/_twin" + path, json=body, timeout=30)
    assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
    return r.json() if r.content else None


@pytest.fixture(scope="module")
def dp_twin() -> Iterator[ThreadedTwin]:
    _require_root()
    twin = ThreadedTwin(TwinConfig(time_scale=FAST, dataplane="netns")).start()
    try:
        yield twin
    finally:
        twin.stop()


@pytest.fixture
def lab(root: None, dp_twin: ThreadedTwin, request: pytest.FixtureRequest) -> Iterator[Lab]:
    admin(dp_twin.url, "POST", "/dataplane/debug", {"break": None})
    yield Lab(dp_twin, "dp-" + request.node.name.replace("_", "-")[5:40])
    admin(dp_twin.url, "POST", "/dataplane/debug", {"break": None})


def test_inbound_tcp22_only_then_added_rules_apply_within_a_second(lab: Lab):
    sg = lab.group("in-22", {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22})
    _, ip = lab.server("vm-in", sg)
    assert lab.eight(ip) == "pass fail fail fail | pass pass pass pass"
    detail = lab.probes([{"id": "b", "from": "client", "to": ip, "proto": "tcp", "port": 22}])["b"]["detail"]
    assert detail.startswith("banner SSH-2.0-OpenSSH"), "the VM's own sshd answers"
    started = time.monotonic()
    lab.rule(sg, protocol="tcp", port_range_min=1000, port_range_max=1000)
    lab.rule(sg, protocol="udp", port_range_min=1, port_range_max=65535)
    lab.rule(sg, protocol="icmp")
    while lab.eight(ip) != "pass pass pass pass | pass pass pass pass":
        assert time.monotonic() - started < 1.0, "rule changes reach the namespace within a second"
    assert time.monotonic() - started < 1.0
    status = admin(lab.url, "GET", "/dataplane")
    assert status["enabled"] and status["stats"]["last_change_to_kernel_ms"] < 1000


def test_egress_rules_and_stateful_return_traffic(lab: Lab):
    sg = lab.group("out", {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22})
    _, ip = lab.server("vm-out", sg)
    assert lab.eight(ip) == "pass fail fail fail | pass pass pass pass"
    lab.drop_rules(sg, direction="egress")          # the default allow-all egress rules (IPv4 and IPv6)
    assert lab.eight(ip) == "pass fail fail fail | fail fail fail fail", "inbound 22 still answers (stateful)"
    lab.rule(sg, direction="egress", protocol="tcp", port_range_min=22, port_range_max=22)
    assert lab.eight(ip) == "pass fail fail fail | pass fail fail fail"
    lab.rule(sg, direction="egress", protocol="icmp")
    assert lab.eight(ip) == "pass fail fail fail | pass fail fail pass"


def test_removing_a_rule_forgets_the_flows_it_let_in(lab: Lab):
    """Neutron deletes the conntrack entries of a removed rule: a UDP exchange on the very same 5-tuple
    (one client socket, one source port) passes while the rule exists and stops when it goes, although
    the stateful ruleset accepts established flows. Adding a rule keeps the tracked flows."""
    import socket as sk

    from cloudtwin.dataplane.netns import entered

    sg = lab.group("udp-in", {"protocol": "udp", "port_range_min": 2000, "port_range_max": 2000})
    _, ip = lab.server("vm-ct", sg)
    client_ns = next(c["namespace"] for c in admin(lab.url, "GET", "/dataplane")["clients"]
                     if c["cloud"] == lab.cloud)
    flushes = admin(lab.url, "GET", "/dataplane")["stats"]["conntrack_flushes"]
    results: dict[str, bool] = {}

    def exchange(tag: str) -> None:
        sock.send(tag.encode())
        try:
            results[tag] = sock.recv(100) == tag.encode()
        except TimeoutError:
            results[tag] = False

    def settle() -> None:
        lab.probes([{"id": "s", "from": "client", "to": ip, "proto": "tcp", "port": 22}])  # waits for the kernel

    with entered(client_ns):
        sock = sk.socket(sk.AF_INET, sk.SOCK_DGRAM)
    try:
        sock.settimeout(0.3)
        with entered(client_ns):
            sock.connect((ip, 2000))
        exchange("before")
        lab.rule(sg, protocol="tcp", port_range_min=22, port_range_max=22)     # a rule added: flows kept
        settle()
        exchange("after-add")
        assert admin(lab.url, "GET", "/dataplane")["stats"]["conntrack_flushes"] == flushes
        lab.drop_rules(sg, protocol="udp")
        settle()
        exchange("after-remove")
    finally:
        sock.close()
    assert results == {"before": True, "after-add": True, "after-remove": False}
    assert admin(lab.url, "GET", "/dataplane")["stats"]["conntrack_flushes"] == flushes + 1


def test_cidr_32_matches_only_that_peer_and_all_and_icmp_rules(lab: Lab):
    sg = lab.group("cidr", {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22})
    _, ip = lab.server("vm-cidr", sg)
    client = lab.client_ip
    rule = lab.rule(sg, protocol="tcp", port_range_min=1000, port_range_max=1000, remote_ip_prefix=f"{client}/32")
    assert lab.eight(ip).startswith("pass pass fail fail")
    lab.conn.network.delete_security_group_rule(rule)
    lab.rule(sg, protocol="tcp", port_range_min=1000, port_range_max=1000, remote_ip_prefix="4.5.6.7/32")
    assert lab.eight(ip).startswith("pass fail fail fail")
    admin(lab.url, "POST", "/dataplane/debug", {"break": "cidr"})
    assert lab.eight(ip).startswith("pass pass fail fail"), "the broken compiler lets 4.5.6.7/32 match anyone"
    admin(lab.url, "POST", "/dataplane/debug", {"break": None})
    every = lab.rule(sg, protocol=None)                               # ALL
    assert lab.eight(ip) == "pass pass pass pass | pass pass pass pass"
    lab.conn.network.delete_security_group_rule(every)
    lab.rule(sg, protocol="icmp")
    assert lab.eight(ip).startswith("pass fail fail pass")


def test_broken_stateful_compiler_fails_banner_probes(lab: Lab):
    sg = lab.group("stateful", {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22})
    _, ip = lab.server("vm-stateful", sg)
    assert admin(lab.url, "POST", "/dataplane/debug", {"break": "stateful"})["break"] == "stateful"
    res = lab.probes([{"id": "i22", "from": "client", "to": ip, "proto": "tcp", "port": 22},
                      {"id": "o22", "from": "vm", "vm_ip": ip, "to": lab.client_ip, "proto": "tcp", "port": 22}])
    assert not res["i22"]["ok"] and not res["o22"]["ok"]
    admin(lab.url, "POST", "/dataplane/debug", {"break": None})
    assert lab.eight(ip) == "pass fail fail fail | pass pass pass pass"
    r = requests.post(lab.url + "/_twin/dataplane/debug", json={"break": "nonsense"}, timeout=10)
    assert r.status_code == 400


def test_remote_group_members_and_private_addresses(lab: Lab):
    web = lab.group("web")
    db = lab.group("db")
    lab.rule(db, protocol="tcp", port_range_min=22, port_range_max=22, remote_group_id=web.id)
    _, web_fip = lab.server("vm-web", web)
    _, db_ip = lab.server("vm-db", db, floating=False)
    probe = {"id": "p", "from": "vm", "vm_ip": web_fip, "to": db_ip, "proto": "tcp", "port": 22}
    assert lab.probes([dict(probe)])["p"]["ok"], "a member of the remote group reaches the private address"
    _, other = lab.server("vm-other", lab.group("other"))
    assert not lab.probes([dict(probe, vm_ip=other)])["p"]["ok"], "a non-member does not"


def test_probe_api_validates_and_reports(lab: Lab):
    for body in ({}, {"probes": [{"from": "x", "to": "1.2.3.4", "proto": "tcp", "port": 22}]},
                 {"probes": [{"from": "client", "to": "nope", "proto": "tcp", "port": 22}]},
                 {"probes": [{"from": "client", "to": "1.2.3.4", "proto": "tcp"}]},
                 {"timeout_ms": 0, "probes": []}):
        r = requests.post(lab.url + "/_twin/dataplane/probe", json=body, timeout=10)
        assert r.status_code == 400, body
    res = lab.probes([{"id": "x", "from": "vm", "vm_ip": "198.51.100.9", "to": "1.2.3.4", "proto": "icmp"}])
    assert res["x"]["ok"] is False and "no data-plane VM" in res["x"]["detail"]


def test_deleting_a_server_removes_its_namespace(lab: Lab):
    sg = lab.group("del", {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22})
    server, ip = lab.server("vm-del", sg)
    status = admin(lab.url, "GET", "/dataplane")
    ns = next(s["namespace"] for s in status["servers"] if s["server_id"] == server.id)
    assert ns in namespaces(status["prefix"])
    lab.conn.compute.delete_server(server)
    lab.conn.compute.wait_for_delete(server, interval=0.05, wait=30)
    status = admin(lab.url, "GET", "/dataplane")
    assert ns not in namespaces(status["prefix"])
    assert all(s["server_id"] != server.id for s in status["servers"])
    veth = f"{status['prefix']}v{ns.rsplit('vm', 1)[1]}"
    deadline = time.monotonic() + 5       # the kernel destroys a deleted namespace's veths asynchronously
    while veth in subprocess.run(["ip", "-n", status["fabric"], "-o", "link"], capture_output=True, text=True).stdout:
        assert time.monotonic() < deadline, "its veths are gone from the fabric"
        time.sleep(0.05)


def test_a_stopped_server_does_not_answer_and_a_reset_cloud_loses_its_namespaces(lab: Lab):
    sg = lab.group("power", {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22})
    server, ip = lab.server("vm-power", sg)
    ssh = [{"id": "s", "from": "client", "to": ip, "proto": "tcp", "port": 22}]
    assert lab.probes(ssh)["s"]["ok"]
    lab.conn.compute.stop_server(server)
    lab.conn.compute.wait_for_server(server, status="SHUTOFF", interval=0.05, wait=30)
    assert lab.probes(ssh)["s"]["detail"] == "timeout", "a SHUTOFF server's links are down"
    lab.conn.compute.start_server(server)
    lab.conn.compute.wait_for_server(server, status="ACTIVE", interval=0.05, wait=30)
    assert lab.probes(ssh)["s"]["ok"]
    admin(lab.url, "POST", f"/reset?cloud={lab.cloud}&faults=false")
    deadline = time.monotonic() + 5                  # no event announces a reset: the reconcile pass does
    while any(s["cloud"] == lab.cloud for s in admin(lab.url, "GET", "/dataplane")["servers"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------------
# lifecycle: stop, Ctrl-C, crash, scale
# ---------------------------------------------------------------------------------------------------

def _lab_server(url: str, cloud: str) -> str:
    conn = sdk_connect(url, cloud=cloud, project="p")
    net = conn.network.create_network(name="n")
    conn.network.create_subnet(network_id=net.id, cidr="10.1.0.0/24", ip_version=4)
    flavor = next(f for f in conn.compute.flavors() if f.name == "m1.small")
    image = next(i for i in conn.image.images() if i.name == "ubuntu-22.04")
    s = conn.compute.create_server(name="vm", flavor_id=flavor.id, image_id=image.id, networks=[{"uuid": net.id}])
    s = conn.compute.wait_for_server(s, status="ACTIVE", interval=0.05, wait=30)
    port = next(conn.network.ports(device_id=s.id))
    public = next(n for n in conn.network.networks() if n.name == "public")
    return conn.network.create_ip(floating_network_id=public.id, port_id=port.id).floating_ip_address


def test_stopping_the_twin_removes_everything(root: None):
    twin = ThreadedTwin(TwinConfig(time_scale=FAST, dataplane="netns")).start()
    try:
        ip = _lab_server(twin.url, "stop-1")
        status = admin(twin.url, "GET", "/dataplane")
        prefix, fabric = status["prefix"], status["fabric"]
        assert status["vms"] == 1 and len(namespaces(prefix)) == 3      # fabric, VM, client
        ns = status["servers"][0]["namespace"]
        tables = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "tables"], capture_output=True,
                                text=True).stdout
        assert f"table inet {prefix}" in tables
        links = subprocess.run(["ip", "-n", fabric, "-o", "link"], capture_output=True, text=True).stdout
        assert links.count(prefix) >= 4                                  # 2 bridges, 3 veths
        assert ip in {a for s in status["servers"] for a in s["floating_ips"]}
    finally:
        twin.stop()
    assert namespaces(prefix) == []
    assert not Path(f"/run/cloudtwin/{prefix}.json").exists()
    host = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert prefix not in host, "nothing is ever made in the host's namespace"


def _subprocess_twin() -> tuple[subprocess.Popen, str]:
    twin = TwinSubprocess("--dataplane", "netns", time_scale=FAST).start()
    assert twin.proc is not None
    return twin.proc, twin.url


def test_ctrl_c_leaves_nothing_and_a_crash_is_cleaned_on_next_start(root: None):
    proc, url = _subprocess_twin()
    try:
        _lab_server(url, "sig-1")
        prefix = admin(url, "GET", "/dataplane")["prefix"]
        assert len(namespaces(prefix)) == 3
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
        assert namespaces(prefix) == [], "Ctrl-C removes every namespace"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    crashed, url = _subprocess_twin()
    try:
        _lab_server(url, "crash-1")
        dead = admin(url, "GET", "/dataplane")["prefix"]
    finally:
        crashed.send_signal(signal.SIGKILL)
        crashed.wait()
    assert len(namespaces(dead)) == 3 and Path(f"/run/cloudtwin/{dead}.json").exists(), "SIGKILL leaves them"
    proc, url = _subprocess_twin()
    try:
        assert namespaces(dead) == [] and not Path(f"/run/cloudtwin/{dead}.json").exists(), \
            "the next start removes a dead twin's leftovers"
        live = admin(url, "GET", "/dataplane")["prefix"]
        done = subprocess.run([sys.executable, "-m", "cloudtwin", "--dataplane-cleanup"], cwd=str(REPO),
                              env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=30)
        assert done.returncode == 0 and live in done.stdout, done.stdout + done.stderr
        assert namespaces(live) == [f"{live}-fab"], "--dataplane-cleanup keeps a running twin's objects"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    assert namespaces(live) == []


def test_two_hundred_servers_each_get_a_filtered_namespace(root: None):
    """The network layer at scale (bare namespaces: 200 sshd forks per probe burst would make this a
    test of CPU contention; machines at scale are bench/vm_access.py's)."""
    twin = ThreadedTwin(TwinConfig(time_scale=FAST, dataplane="netns", vm_runtime="network")).start()
    try:
        conn = sdk_connect(twin.url, cloud="scale-1", project="p")
        net = conn.network.create_network(name="n")
        conn.network.create_subnet(network_id=net.id, cidr="10.8.0.0/22", ip_version=4)
        sg = conn.network.create_security_group(name="ssh")
        conn.network.create_security_group_rule(security_group_id=sg.id, direction="ingress", ethertype="IPv4",
                                                protocol="tcp", port_range_min=22, port_range_max=22)
        flavor = next(f for f in conn.compute.flavors() if f.name == "m1.tiny")
        image = next(i for i in conn.image.images() if i.name == "cirros-0.6.2")
        started = time.monotonic()
        conn.compute.create_server(name="s", flavor_id=flavor.id, image_id=image.id, networks=[{"uuid": net.id}],
                                   security_groups=[{"name": "ssh"}], min_count=200, max_count=200)
        deadline = time.monotonic() + 120
        while (status := admin(twin.url, "GET", "/dataplane"))["vms"] < 200:
            assert time.monotonic() < deadline, status["vms"]
            time.sleep(0.2)
        up = time.monotonic() - started
        print(f"\n200 VM namespaces up {up:.2f} s after the create call; twin max RSS {status['max_rss_mib']} MiB")
        fixed = [s["fixed_ips"][0] for s in status["servers"]]
        assert len(set(fixed)) == 200 and len(namespaces(status["prefix"])) == 201
        # client-less checks on the private network: VM 0 probes every other VM's 22 (open) and 1000 (closed)
        first = fixed[0]
        probes = [{"id": f"{ip}/{port}", "from": "vm", "vm_ip": first, "to": ip, "proto": "tcp", "port": port}
                  for ip in fixed[1:] for port in (22, 1000)]
        res = admin(twin.url, "POST", "/dataplane/probe", {"timeout_ms": 300, "probes": probes})["results"]
        wrong = [r for r in res if r["ok"] != r["id"].endswith("/22")]
        # A burst of 398 probes on a loaded host can miss a 300 ms deadline on an open port; ask those
        # again with time to spare (a filtered port must stay unreachable however long we wait).
        again = [p for p in probes if p["id"] in {r["id"] for r in wrong}]
        if again:
            res = admin(twin.url, "POST", "/dataplane/probe", {"timeout_ms": 3000, "probes": again})["results"]
            wrong = [r for r in res if r["ok"] != r["id"].endswith("/22")]
        assert not wrong, wrong[:5]
        for s in list(conn.compute.servers()):
            conn.compute.delete_server(s)
        deadline = time.monotonic() + 60
        while (status := admin(twin.url, "GET", "/dataplane"))["vms"]:
            assert time.monotonic() < deadline, status["vms"]
            time.sleep(0.2)
        assert namespaces(status["prefix"]) == [status["fabric"]]
    finally:
        twin.stop()
