"""Octavia v2 on Cloud-Twin, driven by unmodified openstacksdk and by raw HTTP.

The twin runs in a background thread (openstacksdk is blocking) at time_scale 0.05, so a load
balancer builds in ~50 ms; the tests still have to wait between steps exactly as against a real cloud,
because any mutation while the load balancer is PENDING_* is a 409.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import openstack
import pytest
import requests
from openstack import exceptions as osexc

from cloudtwin.app import TwinServer
from cloudtwin.clouds import CloudRule, TwinConfig
from cloudtwin.services.octavia.models import OctaviaState

FAIL_PROFILE = """
name: octavia-fail
extends: openstack
stages:
  loadbalancer:
    stages:
      PENDING_CREATE: {fail: {probability: 1.0, to: ERROR, message: "Amphora could not be built."}}
  listener:
    stages:
      PENDING_CREATE: {delay: 0.2, jitter: 0.0, next: ACTIVE, fail: {probability: 1.0, to: ERROR}}
"""
# children settle in 0.2 s (at time_scale 0.05), long enough to be caught PENDING_* between two calls
SLOW_PROFILE = """
name: octavia-slow
extends: openstack
stages:
""" + "".join(f"""  {kind}:
    stages:
      PENDING_CREATE: {{delay: 4.0, jitter: 0.0}}
      PENDING_UPDATE: {{delay: 4.0, jitter: 0.0}}
      PENDING_DELETE: {{delay: 2.0, jitter: 0.0}}
""" for kind in ("loadbalancer", "listener", "pool", "member", "healthmonitor"))


class Twin:
    def __init__(self, tmp: Path) -> None:
        (tmp / "octavia-fail.yaml").write_text(FAIL_PROFILE)
        (tmp / "octavia-slow.yaml").write_text(SLOW_PROFILE)
        self.config = TwinConfig(time_scale=0.05, profile_dirs=[str(tmp)],
                                 cloud_rules=[CloudRule("legacy-*", "legacy-nova"),
                                              CloudRule("failing-*", "octavia-fail"),
                                              CloudRule("slow-*", "octavia-slow")])
        self.loop = asyncio.new_event_loop()
        self.server: TwinServer | None = None
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(TwinServer(port=0, config=self.config).start())
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(10)
        assert self.server is not None
        self.url = self.server.url

    def stop(self) -> None:
        assert self.server is not None
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def connect(self, cloud: str = "slow-main", project: str | None = None) -> Any:
        return openstack.connect(auth_url=f"{self.url}/v3", username="admin", password="admin",
                                 project_name=project or f"p-{uuid.uuid4().hex[:8]}", user_domain_name=cloud,
                                 project_domain_name=cloud, region_name="RegionOne", load_yaml_config=False,
                                 load_envvars=False)

    def region(self, cloud: str = "slow-main") -> Any:
        assert self.server is not None
        return self.server.twin.clouds[cloud].regions["RegionOne"]


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    t = Twin(tmp_path_factory.mktemp("profiles"))
    yield t
    t.stop()


@pytest.fixture
def conn(twin: Twin) -> Any:
    return twin.connect()


class Raw:
    """Raw HTTP against the load-balancer endpoint with the connection's token."""

    def __init__(self, twin: Twin, conn: Any, cloud: str = "slow-main") -> None:
        self.base = f"{twin.url}/{cloud}/RegionOne/load-balancer"
        self.headers = {"X-Auth-Token": conn.auth_token, "Content-Type": "application/json"}

    def __call__(self, method: str, path: str, body: Any = None, prefix: str = "/v2", **kw: Any) -> requests.Response:
        return requests.request(method, self.base + prefix + path, json=body, headers=self.headers, timeout=10, **kw)


def wait_lb(conn: Any, lb_id: str) -> Any:
    return conn.load_balancer.wait_for_load_balancer(lb_id, interval=0.02, wait=20)


def make_subnet(conn: Any, cidr: str = "10.0.0.0/24") -> Any:
    net = conn.network.create_network(name=f"net-{uuid.uuid4().hex[:6]}")
    return conn.network.create_subnet(network_id=net.id, cidr=cidr, ip_version=4, name="sub")


def make_lb(conn: Any, subnet: Any, **kw: Any) -> Any:
    lb = conn.load_balancer.create_load_balancer(vip_subnet_id=subnet.id, **kw)
    return wait_lb(conn, lb.id)


def fault(resp: requests.Response, status: int) -> str:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"faultcode", "faultstring", "debuginfo"}
    assert body["faultcode"] == "Client" and body["debuginfo"] is None
    return str(body["faultstring"])


# ------------------------------------------------------------------------------------------------ flows
def test_full_stack_with_waits_and_immutability(twin: Twin) -> None:
    conn = twin.connect("slow-1")
    lbapi = conn.load_balancer
    subnet = make_subnet(conn)
    lb = lbapi.create_load_balancer(name="lb1", vip_subnet_id=subnet.id, tags=["t1"])
    assert lb.provisioning_status == "PENDING_CREATE" and lb.operating_status == "OFFLINE"
    assert lb.vip_address.startswith("10.0.0.") and lb.vip_network_id == subnet.network_id
    assert lb.vip_subnet_id == subnet.id and lb.project_id == conn.current_project_id
    port = conn.network.get_port(lb.vip_port_id)
    assert port.device_owner == "Octavia" and port.device_id == f"lb-{lb.id}"
    assert port.name == f"octavia-lb-{lb.id}"
    # a listener on a load balancer still building is refused
    with pytest.raises(osexc.ConflictException) as ei:
        lbapi.create_listener(loadbalancer_id=lb.id, protocol="HTTP", protocol_port=80)
    assert f"Load Balancer {lb.id} is immutable and cannot be updated." in str(ei.value)
    lb = wait_lb(conn, lb.id)
    assert lb.provisioning_status == "ACTIVE" and lb.operating_status == "ONLINE"

    li = lbapi.create_listener(loadbalancer_id=lb.id, protocol="HTTP", protocol_port=80, name="web")
    assert li.provisioning_status == "PENDING_CREATE"
    assert lbapi.get_load_balancer(lb.id).provisioning_status == "PENDING_UPDATE"
    with pytest.raises(osexc.ConflictException):
        lbapi.create_pool(listener_id=li.id, protocol="HTTP", lb_algorithm="ROUND_ROBIN")
    wait_lb(conn, lb.id)
    li = lbapi.get_listener(li.id)
    assert li.provisioning_status == "ACTIVE" and li.connection_limit == -1
    assert li.load_balancers == [{"id": lb.id}]

    pool = lbapi.create_pool(listener_id=li.id, protocol="HTTP", lb_algorithm="ROUND_ROBIN", name="p")
    assert pool.provisioning_status == "PENDING_CREATE"
    assert lbapi.get_listener(li.id).provisioning_status == "PENDING_UPDATE"   # intermediate parent held too
    wait_lb(conn, lb.id)
    assert lbapi.get_listener(li.id).default_pool_id == pool.id
    assert lbapi.get_listener(li.id).provisioning_status == "ACTIVE"

    member = lbapi.create_member(pool, address="10.0.0.50", protocol_port=8080, subnet_id=subnet.id, weight=5)
    assert member.provisioning_status == "PENDING_CREATE" and member.weight == 5
    wait_lb(conn, lb.id)
    member = lbapi.get_member(member, pool)
    assert member.provisioning_status == "ACTIVE" and member.operating_status == "NO_MONITOR"

    hm = lbapi.create_health_monitor(pool_id=pool.id, type="HTTP", delay=5, timeout=3, max_retries=3)
    assert hm.http_method == "GET" and hm.url_path == "/" and hm.expected_codes == "200"
    assert hm.max_retries_down == 3 and hm.pools == [{"id": pool.id}]
    wait_lb(conn, lb.id)
    pool = lbapi.get_pool(pool.id)
    assert pool.health_monitor_id == hm.id and pool.members == [{"id": member.id}]
    assert pool.listeners == [{"id": li.id}] and pool.loadbalancers == [{"id": lb.id}]
    # no server behind 10.0.0.50: the monitor marks it ERROR, and the pool with it
    assert lbapi.get_member(member, pool).operating_status == "ERROR"
    assert pool.operating_status == "ERROR"

    lb = lbapi.get_load_balancer(lb.id)
    assert lb.listeners == [{"id": li.id}] and lb.pools == [{"id": pool.id}]

    # updates: PUT -> PENDING_UPDATE -> ACTIVE
    lb = lbapi.update_load_balancer(lb, name="lb1-renamed")
    assert lb.provisioning_status == "PENDING_UPDATE" and lb.name == "lb1-renamed"
    wait_lb(conn, lb.id)
    m2 = lbapi.update_member(member, pool, weight=7)
    assert m2.provisioning_status == "PENDING_UPDATE" and m2.weight == 7
    assert lbapi.get_pool(pool.id).provisioning_status == "PENDING_UPDATE"
    wait_lb(conn, lb.id)
    assert lbapi.get_member(member, pool).provisioning_status == "ACTIVE"
    assert lbapi.get_pool(pool.id).provisioning_status == "ACTIVE"
    hm = lbapi.update_health_monitor(hm, delay=10)
    wait_lb(conn, lb.id)
    assert lbapi.get_health_monitor(hm.id).delay == 10

    # find by name (the SDK's GET-then-list) and stats
    assert lbapi.find_load_balancer("lb1-renamed").id == lb.id
    stats = lbapi.get_load_balancer_statistics(lb.id)
    assert stats.bytes_in == 0 and stats.active_connections == 0

    # status tree
    tree = conn.load_balancer.get(f"/lbaas/loadbalancers/{lb.id}/status").json()["statuses"]["loadbalancer"]
    assert tree["id"] == lb.id and tree["provisioning_status"] == "ACTIVE"
    (tli,) = tree["listeners"]
    assert tli["id"] == li.id and tli["operating_status"] == "ERROR"
    (tpool,) = tli["pools"]
    assert tpool["id"] == pool.id and tpool["health_monitor"]["id"] == hm.id
    assert tpool["health_monitor"]["type"] == "HTTP"
    assert tpool["members"] == [{"id": member.id, "name": "", "address": "10.0.0.50", "protocol_port": 8080,
                                 "provisioning_status": "ACTIVE", "operating_status": "ERROR"}]

    # child deletes hold the LB; deleting the pool takes its members and monitor along
    lbapi.delete_health_monitor(hm)
    assert lbapi.get_load_balancer(lb.id).provisioning_status == "PENDING_UPDATE"
    with pytest.raises(osexc.ConflictException):
        lbapi.delete_member(member, pool)
    wait_lb(conn, lb.id)
    with pytest.raises(osexc.NotFoundException):
        lbapi.get_health_monitor(hm.id)
    assert lbapi.get_member(member, pool).operating_status == "NO_MONITOR"
    lbapi.delete_pool(pool)
    wait_lb(conn, lb.id)
    with pytest.raises(osexc.NotFoundException):
        lbapi.get_pool(pool.id)
    assert lbapi.get_listener(li.id).default_pool_id is None
    assert twin.region("slow-1").octavia.members.get(member.id) is None
    lbapi.delete_listener(li)
    wait_lb(conn, lb.id)
    lbapi.delete_load_balancer(lb)
    lbapi.wait_for_delete(lbapi.get_load_balancer(lb.id), interval=0.02, wait=20)
    with pytest.raises(osexc.NotFoundException):
        conn.network.get_port(lb.vip_port_id)


def test_cascade_delete(twin: Twin, conn: Any) -> None:
    lbapi = conn.load_balancer
    lb = make_lb(conn, make_subnet(conn))
    li = lbapi.create_listener(loadbalancer_id=lb.id, protocol="TCP", protocol_port=22)
    wait_lb(conn, lb.id)
    pool = lbapi.create_pool(listener_id=li.id, protocol="TCP", lb_algorithm="LEAST_CONNECTIONS")
    wait_lb(conn, lb.id)
    member = lbapi.create_member(pool, address="10.0.0.9", protocol_port=22)
    wait_lb(conn, lb.id)
    hm = lbapi.create_health_monitor(pool_id=pool.id, type="TCP", delay=2, timeout=1, max_retries=2)
    wait_lb(conn, lb.id)
    assert hm.http_method is None and hm.url_path is None

    with pytest.raises(osexc.BadRequestException) as ei:
        lbapi.delete_load_balancer(lb)
    assert f"Cannot delete Load Balancer {lb.id} - it has children" in str(ei.value)
    used = twin.region().octavia.used(lb.project_id, "member")
    assert used == 1
    lbapi.delete_load_balancer(lb, cascade=True)
    assert lbapi.get_load_balancer(lb.id).provisioning_status == "PENDING_DELETE"
    with pytest.raises(osexc.ConflictException):
        lbapi.delete_load_balancer(lb, cascade=True)
    lbapi.wait_for_delete(lbapi.get_load_balancer(lb.id), interval=0.02, wait=20)
    for getter, arg in ((lbapi.get_listener, li.id), (lbapi.get_pool, pool.id), (lbapi.get_health_monitor, hm.id)):
        with pytest.raises(osexc.NotFoundException):
            getter(arg)
    st = twin.region().octavia
    assert member.id not in st.members
    assert st.used(lb.project_id, "member") == 0 and st.used(lb.project_id, "loadbalancer") == 0


def test_member_health_follows_server_state(twin: Twin, conn: Any) -> None:
    lbapi = conn.load_balancer
    subnet = make_subnet(conn, "192.168.7.0/24")
    image = next(i for i in conn.image.images() if i.name == "cirros-0.6.2")
    flavor = conn.compute.find_flavor("m1.tiny")
    servers = [conn.compute.create_server(name=f"vm{i}", image_id=image.id, flavor_id=flavor.id,
                                          networks=[{"uuid": subnet.network_id}]) for i in range(2)]
    servers = [conn.compute.wait_for_server(s, interval=0.02, wait=20) for s in servers]
    ips = [next(iter(s.addresses.values()))[0]["addr"] for s in servers]

    lb = make_lb(conn, subnet)
    li = lbapi.create_listener(loadbalancer_id=lb.id, protocol="TCP", protocol_port=80)
    wait_lb(conn, lb.id)
    pool = lbapi.create_pool(listener_id=li.id, protocol="TCP", lb_algorithm="ROUND_ROBIN")
    wait_lb(conn, lb.id)
    members = []
    for ip in ips:
        members.append(lbapi.create_member(pool, address=ip, protocol_port=80, subnet_id=subnet.id))
        wait_lb(conn, lb.id)
    assert [lbapi.get_member(m, pool).operating_status for m in members] == ["NO_MONITOR"] * 2
    assert lbapi.get_pool(pool.id).operating_status == "ONLINE"
    lbapi.create_health_monitor(pool_id=pool.id, type="TCP", delay=1, timeout=1, max_retries=1)
    wait_lb(conn, lb.id)

    def statuses() -> list[str]:
        return [m.operating_status for m in lbapi.members(pool)]

    assert statuses() == ["ONLINE", "ONLINE"]
    assert lbapi.get_load_balancer(lb.id).operating_status == "ONLINE"

    conn.compute.stop_server(servers[0])
    conn.compute.wait_for_server(servers[0], status="SHUTOFF", interval=0.02, wait=20)
    assert statuses() == ["ERROR", "ONLINE"]
    assert lbapi.get_pool(pool.id).operating_status == "DEGRADED"
    assert lbapi.get_listener(li.id).operating_status == "DEGRADED"
    assert lbapi.get_load_balancer(lb.id).operating_status == "DEGRADED"

    conn.compute.stop_server(servers[1])
    conn.compute.wait_for_server(servers[1], status="SHUTOFF", interval=0.02, wait=20)
    assert statuses() == ["ERROR", "ERROR"]
    assert lbapi.get_pool(pool.id).operating_status == "ERROR"

    conn.compute.start_server(servers[0])
    conn.compute.wait_for_server(servers[0], status="ACTIVE", interval=0.02, wait=20)
    assert statuses() == ["ONLINE", "ERROR"]

    # administratively down: OFFLINE, and not counted in the pool's health
    lbapi.update_member(members[1], pool, admin_state_up=False)
    wait_lb(conn, lb.id)
    assert statuses() == ["ONLINE", "OFFLINE"]
    assert lbapi.get_pool(pool.id).operating_status == "ONLINE"

    # a deleted server is an unhealthy member
    conn.compute.delete_server(servers[0])
    conn.compute.wait_for_delete(servers[0], interval=0.02, wait=20)
    assert statuses()[0] == "ERROR"
    lbapi.delete_load_balancer(lb, cascade=True)


def test_failed_transitions_go_to_error(twin: Twin) -> None:
    conn = twin.connect("failing-1")
    lbapi = conn.load_balancer
    subnet = make_subnet(conn)
    lb = lbapi.create_load_balancer(vip_subnet_id=subnet.id)
    with pytest.raises(osexc.ResourceFailure):
        wait_lb(conn, lb.id)
    lb = lbapi.get_load_balancer(lb.id)
    assert lb.provisioning_status == "ERROR" and lb.operating_status == "ERROR"
    # an ERROR load balancer takes no children, but can be deleted
    with pytest.raises(osexc.ConflictException):
        lbapi.create_listener(loadbalancer_id=lb.id, protocol="TCP", protocol_port=80)
    lbapi.delete_load_balancer(lb)
    lbapi.wait_for_delete(lbapi.get_load_balancer(lb.id), interval=0.02, wait=20)


def test_failed_child_releases_lb(twin: Twin) -> None:
    conn = twin.connect("failing-2")
    lbapi = conn.load_balancer
    subnet = make_subnet(conn)
    st = twin.region("failing-2").octavia
    lb = lbapi.create_load_balancer(vip_subnet_id=subnet.id)
    obj = st.loadbalancers[lb.id]
    # this profile fails every LB build; mark this one built the way the scheduler would
    asyncio.run_coroutine_threadsafe(_settle(twin, obj), twin.loop).result(5)
    assert lbapi.get_load_balancer(lb.id).provisioning_status == "ACTIVE"
    li = lbapi.create_listener(loadbalancer_id=lb.id, protocol="TCP", protocol_port=80)
    wait_lb(conn, lb.id)
    assert lbapi.get_listener(li.id).provisioning_status == "ERROR"
    assert lbapi.get_load_balancer(lb.id).provisioning_status == "ACTIVE"
    # an ERROR listener can be deleted
    lbapi.delete_listener(li)
    wait_lb(conn, lb.id)
    with pytest.raises(osexc.NotFoundException):
        lbapi.get_listener(li.id)


async def _settle(twin: Twin, obj: Any) -> None:
    twin.server.twin.scheduler.cancel(obj)  # type: ignore[union-attr]
    obj.state = "ACTIVE"


def test_quota(twin: Twin) -> None:
    conn = twin.connect("legacy-1")   # legacy-nova profile: load_balancers: 2
    subnet = make_subnet(conn)
    raw = Raw(twin, conn, "legacy-1")
    for _ in range(2):
        conn.load_balancer.create_load_balancer(vip_subnet_id=subnet.id)
    r = raw("POST", "/lbaas/loadbalancers", {"loadbalancer": {"vip_subnet_id": subnet.id}})
    assert fault(r, 403) == "Quota has been met for resources: Load Balancer"
    q = raw("GET", f"/lbaas/quotas/{conn.current_project_id}").json()["quota"]
    assert q["load_balancer"] == 2
    # another project of the same cloud has its own quota
    other = twin.connect("legacy-1")
    assert other.load_balancer.create_load_balancer(vip_subnet_id=make_subnet(other).id).id


# ------------------------------------------------------------------------------------------------ raw HTTP
def test_errors_and_envelopes(twin: Twin) -> None:
    conn = twin.connect("slow-2")
    raw = Raw(twin, conn, "slow-2")
    subnet = make_subnet(conn)
    missing = str(uuid.uuid4())

    assert fault(raw("GET", f"/lbaas/loadbalancers/{missing}"), 404) == f"Load Balancer {missing} not found."
    assert fault(raw("GET", f"/lbaas/listeners/{missing}", prefix="/v2.0"), 404) == f"Listener {missing} not found."
    assert fault(raw("GET", f"/lbaas/pools/{missing}"), 404) == f"Pool {missing} not found."
    assert fault(raw("GET", f"/lbaas/healthmonitors/{missing}"), 404) == f"Health Monitor {missing} not found."
    assert fault(raw("DELETE", f"/lbaas/loadbalancers/{missing}"), 404) == f"Load Balancer {missing} not found."
    assert fault(raw("GET", "/lbaas/nothing"), 404) == "The resource could not be found."

    assert "VIP must contain one of" in fault(raw("POST", "/lbaas/loadbalancers", {"loadbalancer": {"name": "x"}}),
                                              400)
    r = raw("POST", "/lbaas/loadbalancers", {"loadbalancer": {"vip_subnet_id": missing}})
    assert fault(r, 400) == f"Subnet {missing} not found."
    assert "Network" in fault(raw("POST", "/lbaas/loadbalancers", {"loadbalancer": {"vip_network_id": missing}}), 400)
    r = raw("POST", "/lbaas/loadbalancers", {"loadbalancer": {"vip_subnet_id": subnet.id, "admin_state_up": "x"}})
    assert "admin_state_up" in fault(r, 400)
    r = requests.post(raw.base + "/v2/lbaas/loadbalancers", data=b"{nope", headers=raw.headers, timeout=10)
    fault(r, 400)
    assert "loadbalancer" in fault(raw("POST", "/lbaas/loadbalancers", {"lb": {}}), 400)

    # by vip_network_id: a port is allocated on the network
    r = raw("POST", "/lbaas/loadbalancers", {"loadbalancer": {"vip_network_id": subnet.network_id, "name": "n"}})
    assert r.status_code == 201, r.text
    lb = r.json()["loadbalancer"]
    assert lb["vip_subnet_id"] == subnet.id and lb["vip_address"].startswith("10.0.0.")
    assert lb["listeners"] == [] and lb["pools"] == [] and lb["tags"] == [] and lb["provider"] == "amphora"
    assert lb["created_at"].endswith("Z")
    wait_lb(conn, lb["id"])
    lb_id = lb["id"]

    # listener validation
    def listener(**kw: Any) -> requests.Response:
        return raw("POST", "/lbaas/listeners", {"listener": {"loadbalancer_id": lb_id, **kw}})

    assert "protocol_port" in fault(listener(protocol="TCP", protocol_port=70000), 400)
    assert "protocol_port" in fault(listener(protocol="TCP"), 400)
    assert "protocol" in fault(listener(protocol="FTP", protocol_port=21), 400)
    assert "TERMINATED_HTTPS" in fault(listener(protocol="TERMINATED_HTTPS", protocol_port=443), 400)
    assert fault(raw("POST", "/lbaas/listeners", {"listener": {"loadbalancer_id": missing, "protocol": "TCP",
                                                                "protocol_port": 1}}), 404) \
        == f"Load Balancer {missing} not found."
    r = listener(protocol="TCP", protocol_port=80)
    assert r.status_code == 201, r.text
    li_id = r.json()["listener"]["id"]
    assert fault(listener(protocol="TCP", protocol_port=81), 409) == \
        f"Load Balancer {lb_id} is immutable and cannot be updated."
    wait_lb(conn, lb_id)
    assert fault(listener(protocol="HTTP", protocol_port=80), 409) == \
        "Another Listener on this Load Balancer is already using protocol_port 80"
    r = listener(protocol="UDP", protocol_port=80)        # UDP and TCP may share a port
    assert r.status_code == 201, r.text
    wait_lb(conn, lb_id)
    r = raw("PUT", f"/lbaas/listeners/{li_id}", {"listener": {"protocol_port": 90}})
    assert "protocol_port" in fault(r, 400)

    # pools
    def pool(**kw: Any) -> requests.Response:
        return raw("POST", "/lbaas/pools", {"pool": kw})

    assert "listener_id, loadbalancer_id" in fault(pool(protocol="TCP", lb_algorithm="ROUND_ROBIN"), 400)
    assert "lb_algorithm" in fault(pool(protocol="TCP", lb_algorithm="RANDOM", listener_id=li_id), 400)
    assert "pool protocol" in fault(pool(protocol="UDP", lb_algorithm="ROUND_ROBIN", listener_id=li_id), 400)
    r = pool(protocol="TCP", lb_algorithm="ROUND_ROBIN", listener_id=li_id)
    assert r.status_code == 201, r.text
    pool_id = r.json()["pool"]["id"]
    wait_lb(conn, lb_id)
    assert fault(pool(protocol="TCP", lb_algorithm="ROUND_ROBIN", listener_id=li_id), 409) == \
        "This listener already has a default pool"
    r = pool(protocol="HTTP", lb_algorithm="SOURCE_IP", loadbalancer_id=lb_id,
             session_persistence={"type": "APP_COOKIE"})
    assert "Cookie" in fault(r, 400)

    # members
    def member(**kw: Any) -> requests.Response:
        return raw("POST", f"/lbaas/pools/{pool_id}/members", {"member": kw})

    assert "address" in fault(member(address="not-an-ip", protocol_port=80), 400)
    assert "weight" in fault(member(address="10.0.0.7", protocol_port=80, weight=300), 400)
    assert fault(member(address="10.0.0.7", protocol_port=80, subnet_id=missing), 400) == \
        f"Subnet {missing} not found."
    assert fault(raw("POST", f"/lbaas/pools/{missing}/members", {"member": {"address": "10.0.0.7",
                                                                           "protocol_port": 80}}), 404) \
        == f"Pool {missing} not found."
    r = member(address="10.0.0.7", protocol_port=80)
    assert r.status_code == 201, r.text
    m = r.json()["member"]
    assert m["weight"] == 1 and m["backup"] is False and m["operating_status"] == "NO_MONITOR"
    wait_lb(conn, lb_id)
    assert fault(member(address="10.0.0.7", protocol_port=80), 409) == \
        "Another member on this pool is already using ip 10.0.0.7 on protocol_port 80"
    assert fault(raw("GET", f"/lbaas/pools/{pool_id}/members/{missing}"), 404) == f"Member {missing} not found."

    # health monitors
    def hm(**kw: Any) -> requests.Response:
        return raw("POST", "/lbaas/healthmonitors", {"healthmonitor": {"pool_id": pool_id, **kw}})

    assert "timeout" in fault(hm(type="TCP", delay=1, timeout=5, max_retries=3), 400)
    assert "max_retries" in fault(hm(type="TCP", delay=5, timeout=1, max_retries=11), 400)
    assert "max_retries" in fault(hm(type="TCP", delay=5, timeout=1), 400)
    assert "url_path" in fault(hm(type="TCP", delay=5, timeout=1, max_retries=2, url_path="/x"), 400)
    assert "expected_codes" in fault(hm(type="HTTP", delay=5, timeout=1, max_retries=2, expected_codes="abc"), 400)
    r = hm(type="HTTP", delay=5, timeout=1, max_retries=2, url_path="/health", expected_codes="200-204")
    assert r.status_code == 201, r.text
    wait_lb(conn, lb_id)
    assert fault(hm(type="TCP", delay=5, timeout=1, max_retries=2), 409) == "This pool already has a health monitor"

    # another project cannot see any of it
    other = Raw(twin, twin.connect("slow-2"), "slow-2")
    assert fault(other("GET", f"/lbaas/loadbalancers/{lb_id}"), 404) == f"Load Balancer {lb_id} not found."
    assert other("GET", "/lbaas/loadbalancers").json()["loadbalancers"] == []
    assert fault(other("DELETE", f"/lbaas/pools/{pool_id}"), 404) == f"Pool {pool_id} not found."

    # no token -> 401 in Octavia's envelope; versions need none
    r = requests.get(raw.base + "/v2/lbaas/loadbalancers", timeout=10)
    assert fault_status(r) == 401
    r = requests.get(raw.base + "/", timeout=10)
    assert r.status_code == 200 and {v["id"] for v in r.json()["versions"]} == {"v2", "v2.0"}


def fault_status(r: requests.Response) -> int:
    assert set(r.json()) == {"faultcode", "faultstring", "debuginfo"}
    return r.status_code


def test_lists_filters_paging(twin: Twin, conn: Any) -> None:
    raw = Raw(twin, conn)
    subnet = make_subnet(conn)
    ids = [conn.load_balancer.create_load_balancer(vip_subnet_id=subnet.id, name=f"lb-{i}",
                                                   tags=["even"] if i % 2 == 0 else ["odd"]).id for i in range(5)]
    for i in ids:
        wait_lb(conn, i)
    for prefix in ("/v2", "/v2.0"):
        body = raw("GET", "/lbaas/loadbalancers", prefix=prefix).json()
        assert [lb["id"] for lb in body["loadbalancers"]] == ids and body["loadbalancers_links"] == []
    body = raw("GET", "/lbaas/loadbalancers?limit=2").json()
    assert [lb["id"] for lb in body["loadbalancers"]] == ids[:2]
    (link,) = body["loadbalancers_links"]
    assert link["rel"] == "next" and f"marker={ids[1]}" in link["href"]
    body = requests.get(link["href"], headers=raw.headers, timeout=10).json()
    assert [lb["id"] for lb in body["loadbalancers"]] == ids[2:4]
    assert raw("GET", "/lbaas/loadbalancers?name=lb-3").json()["loadbalancers"][0]["id"] == ids[3]
    assert len(raw("GET", "/lbaas/loadbalancers?tags=even").json()["loadbalancers"]) == 3
    assert len(raw("GET", "/lbaas/loadbalancers?provisioning_status=ACTIVE").json()["loadbalancers"]) == 5
    assert raw("GET", "/lbaas/loadbalancers?name=nope&bogus=1").json()["loadbalancers"] == []
    body = raw("GET", "/lbaas/loadbalancers?fields=id&fields=name&sort=name:desc").json()
    assert body["loadbalancers"][0] == {"id": ids[4], "name": "lb-4"}
    # the SDK lists and filters too
    assert {lb.id for lb in conn.load_balancer.load_balancers(tags="odd")} == {ids[1], ids[3]}
    assert [lb.name for lb in conn.load_balancer.load_balancers(name="lb-0")] == ["lb-0"]
    for i in ids:
        conn.load_balancer.delete_load_balancer(i)


def test_vip_port_and_failover(twin: Twin, conn: Any) -> None:
    subnet = make_subnet(conn)
    port = conn.network.create_port(network_id=subnet.network_id, name="my-vip")
    lb = conn.load_balancer.create_load_balancer(vip_port_id=port.id)
    assert lb.vip_port_id == port.id and lb.vip_address == port.fixed_ips[0]["ip_address"]
    wait_lb(conn, lb.id)
    conn.load_balancer.failover_load_balancer(lb.id)
    assert conn.load_balancer.get_load_balancer(lb.id).provisioning_status == "PENDING_UPDATE"
    wait_lb(conn, lb.id)
    conn.load_balancer.delete_load_balancer(lb.id)
    conn.load_balancer.wait_for_delete(conn.load_balancer.get_load_balancer(lb.id), interval=0.02, wait=20)
    # the user's port survives the load balancer, unbound
    kept = conn.network.get_port(port.id)
    assert kept.device_id == ""


# ------------------------------------------------------------------------------------------------ model
def test_rebuild_recomputes_indexes(twin: Twin, conn: Any) -> None:
    subnet = make_subnet(conn)
    lb = make_lb(conn, subnet)
    li = conn.load_balancer.create_listener(loadbalancer_id=lb.id, protocol="TCP", protocol_port=5)
    wait_lb(conn, lb.id)
    pool = conn.load_balancer.create_pool(listener_id=li.id, protocol="TCP", lb_algorithm="ROUND_ROBIN")
    wait_lb(conn, lb.id)
    conn.load_balancer.create_member(pool, address="10.0.0.77", protocol_port=5)
    wait_lb(conn, lb.id)
    conn.load_balancer.create_health_monitor(pool_id=pool.id, type="PING", delay=3, timeout=3, max_retries=3)
    wait_lb(conn, lb.id)
    st: OctaviaState = twin.region().octavia
    before = (dict(st._lb_listeners), dict(st._lb_pools), dict(st._pool_members), dict(st._pool_listeners),
              dict(st._pool_hm), dict(st._member_key), dict(st._used))
    st.rebuild()
    after = (dict(st._lb_listeners), dict(st._lb_pools), dict(st._pool_members), dict(st._pool_listeners),
             dict(st._pool_hm), dict(st._member_key), dict(st._used))
    assert before == after
    assert set(OctaviaState.TABLES) == {"loadbalancers", "listeners", "pools", "members", "healthmonitors"}
    assert st.counts()["members"] >= 1
    assert all(callable(st.on_enter_for(k)) for _, k in OctaviaState.TABLES.values())
    conn.load_balancer.delete_load_balancer(lb.id, cascade=True)


def test_default_pool_on_listener_update(twin: Twin, conn: Any) -> None:
    lbapi = conn.load_balancer
    lb = make_lb(conn, make_subnet(conn))
    li = lbapi.create_listener(loadbalancer_id=lb.id, protocol="HTTP", protocol_port=80)
    wait_lb(conn, lb.id)
    pool = lbapi.create_pool(loadbalancer_id=lb.id, protocol="HTTP", lb_algorithm="ROUND_ROBIN")
    wait_lb(conn, lb.id)
    assert lbapi.get_pool(pool.id).listeners == []
    lbapi.update_listener(li, default_pool_id=pool.id)
    wait_lb(conn, lb.id)
    assert lbapi.get_pool(pool.id).listeners == [{"id": li.id}]
    lbapi.update_listener(li, default_pool_id=None)
    wait_lb(conn, lb.id)
    assert lbapi.get_pool(pool.id).listeners == []
    assert lbapi.get_listener(li.id).default_pool_id is None
    lbapi.delete_load_balancer(lb.id, cascade=True)


def test_timing_is_scaled(twin: Twin, conn: Any) -> None:
    """The whole five-step stack takes well under a second at time_scale 0.05."""
    t0 = time.monotonic()
    lb = make_lb(conn, make_subnet(conn))
    assert time.monotonic() - t0 < 3
    conn.load_balancer.delete_load_balancer(lb.id)


def test_member_on_another_network_without_subnet_id(twin: Twin, conn: Any) -> None:
    """A member given only an address is found on whichever of the project's subnets holds it."""
    lbapi = conn.load_balancer
    vip_subnet = make_subnet(conn, "10.1.0.0/24")
    app_subnet = make_subnet(conn, "10.2.0.0/24")
    image = next(i for i in conn.image.images() if i.name == "cirros-0.6.2")
    server = conn.compute.create_server(name="app", image_id=image.id, flavor_id=conn.compute.find_flavor("m1.tiny").id,
                                        networks=[{"uuid": app_subnet.network_id}])
    server = conn.compute.wait_for_server(server, interval=0.02, wait=20)
    ip = next(iter(server.addresses.values()))[0]["addr"]
    lb = make_lb(conn, vip_subnet)
    pool = lbapi.create_pool(loadbalancer_id=lb.id, protocol="TCP", lb_algorithm="ROUND_ROBIN")
    wait_lb(conn, lb.id)
    member = lbapi.create_member(pool, address=ip, protocol_port=22)
    wait_lb(conn, lb.id)
    lbapi.create_health_monitor(pool_id=pool.id, type="TCP", delay=1, timeout=1, max_retries=1)
    wait_lb(conn, lb.id)
    assert lbapi.get_member(member, pool).operating_status == "ONLINE"
    lbapi.delete_load_balancer(lb.id, cascade=True)
    conn.compute.delete_server(server)


HOSTILE = [None, [], "x", 5, {"x": 1}, {"loadbalancer": []}, {"listener": "x"},
           {"loadbalancer": {"name": 5, "vip_subnet_id": ["a"], "tags": "t", "admin_state_up": None}},
           {"listener": {"loadbalancer_id": 5, "protocol": None, "protocol_port": "abc", "insert_headers": [1],
                         "allowed_cidrs": ["nope"], "connection_limit": -5, "default_pool_id": 7}},
           {"pool": {"protocol": "TCP", "lb_algorithm": "ROUND_ROBIN", "listener_id": {"a": 1},
                     "session_persistence": "x"}},
           {"pool": {"protocol": "TCP", "lb_algorithm": "ROUND_ROBIN", "loadbalancer_id": "nope",
                     "session_persistence": {"type": "HTTP_COOKIE", "cookie_name": 5}}},
           {"member": {"address": 5, "protocol_port": 1e9, "weight": True, "monitor_port": "x", "subnet_id": 1}},
           {"healthmonitor": {"pool_id": None, "type": "TCP", "delay": -1, "timeout": "1", "max_retries": 0,
                              "http_method": "FETCH", "expected_codes": 200}}]


def test_hostile_bodies_never_500(twin: Twin, conn: Any) -> None:
    raw = Raw(twin, conn)
    subnet = make_subnet(conn)
    lb = make_lb(conn, subnet)
    li = conn.load_balancer.create_listener(loadbalancer_id=lb.id, protocol="TCP", protocol_port=80)
    wait_lb(conn, lb.id)
    pool = conn.load_balancer.create_pool(listener_id=li.id, protocol="TCP", lb_algorithm="ROUND_ROBIN")
    wait_lb(conn, lb.id)
    member = conn.load_balancer.create_member(pool, address="10.0.0.5", protocol_port=80)
    wait_lb(conn, lb.id)
    hm = conn.load_balancer.create_health_monitor(pool_id=pool.id, type="HTTP", delay=3, timeout=2, max_retries=2)
    wait_lb(conn, lb.id)
    targets = [("POST", "/lbaas/loadbalancers"), ("PUT", f"/lbaas/loadbalancers/{lb.id}"),
               ("POST", "/lbaas/listeners"), ("PUT", f"/lbaas/listeners/{li.id}"),
               ("POST", "/lbaas/pools"), ("PUT", f"/lbaas/pools/{pool.id}"),
               ("POST", f"/lbaas/pools/{pool.id}/members"), ("PUT", f"/lbaas/pools/{pool.id}/members/{member.id}"),
               ("POST", "/lbaas/healthmonitors"), ("PUT", f"/lbaas/healthmonitors/{hm.id}")]
    for method, path in targets:
        for body in HOSTILE:
            r = raw(method, path, body)
            assert r.status_code < 500, (method, path, body, r.text)
            if r.status_code >= 400:
                fault(r, r.status_code)
            if r.status_code in (200, 201):
                wait_lb(conn, lb.id)
    for q in ("limit=-1", "limit=x", "marker=nope", "sort=bogus:asc", "sort_key=name&sort_dir=sideways",
              "fields=", "tags=", "admin_state_up=maybe"):
        r = raw("GET", f"/lbaas/loadbalancers?{q}")
        assert r.status_code in (200, 400), (q, r.text)
    conn.load_balancer.delete_load_balancer(lb.id, cascade=True)
