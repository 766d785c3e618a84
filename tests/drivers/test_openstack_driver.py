"""The OpenStack driver's pure mappings (no cloud): rules, VM status, health, errors, credentials."""

import pytest

from spider_core.drivers.base import ConnectionInfo
from spider_core.drivers.openstack import CloudTwinDriver, OpenStackDriver
from spider_core.drivers.openstack.mapping import (DEFAULT_EGRESS, describe, described, image_arch,
                                                   image_distribution, image_platform, is_default_v4_egress,
                                                   is_default_v6_egress, is_settled, member_healthy,
                                                   monitor_protocol, monitor_type, neutron_to_rule, rule_key,
                                                   rule_to_neutron, rules_from_group, vm_status)
from spider_core.drivers.openstack.session import (OpenStackError, OpenStackNotFound, error_from_response,
                                                   map_exception, parse_error_body)
from spider_core.errors import DriverError, DriverNotFound, is_not_found
from spider_core.model import KeyValue, SecurityRule, VMStatus


# ---- rules ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("rule, body", [
    (SecurityRule("inbound", "tcp", "22", "22", ""),
     {"direction": "ingress", "ethertype": "IPv4", "remote_ip_prefix": "0.0.0.0/0", "protocol": "tcp",
      "port_range_min": 22, "port_range_max": 22}),
    (SecurityRule("INBOUND", "UDP", "1", "65535", "10.0.0.0/8"),
     {"direction": "ingress", "ethertype": "IPv4", "remote_ip_prefix": "10.0.0.0/8", "protocol": "udp",
      "port_range_min": 1, "port_range_max": 65535}),
    (SecurityRule("outbound", "ICMP", "-1", "-1", "0.0.0.0/0"),
     {"direction": "egress", "ethertype": "IPv4", "remote_ip_prefix": "0.0.0.0/0", "protocol": "icmp"}),
    (SecurityRule("inbound", "ALL", "-1", "-1", "::/0"),
     {"direction": "ingress", "ethertype": "IPv6", "remote_ip_prefix": "::/0", "protocol": None}),
    (SecurityRule("inbound", "icmp", "-1", "-1", "2001:db8::/32"),
     {"direction": "ingress", "ethertype": "IPv6", "remote_ip_prefix": "2001:db8::/32", "protocol": "ipv6-icmp"}),
    (SecurityRule("inbound", "TCP", "80", "80", "1.2.3.4/24"),  # host bits cleared
     {"direction": "ingress", "ethertype": "IPv4", "remote_ip_prefix": "1.2.3.0/24", "protocol": "tcp",
      "port_range_min": 80, "port_range_max": 80}),
])
def test_rule_to_neutron(rule, body):
    assert rule_to_neutron(rule) == body
    assert rule_to_neutron(rule, "sg-1")["security_group_id"] == "sg-1"


@pytest.mark.parametrize("rule", [
    SecurityRule("sideways", "TCP", "22", "22"),
    SecurityRule("inbound", "GRE", "-1", "-1"),
    SecurityRule("inbound", "TCP", "x", "22"),
    SecurityRule("inbound", "TCP", "-1", "-1"),
    SecurityRule("inbound", "TCP", "0", "22"),
    SecurityRule("inbound", "UDP", "30", "20"),
    SecurityRule("inbound", "TCP", "1", "70000"),
])
def test_rule_to_neutron_rejects(rule):
    with pytest.raises(DriverError):
        rule_to_neutron(rule)


@pytest.mark.parametrize("nr, rule", [
    ({"direction": "egress", "ethertype": "IPv4", "protocol": None, "remote_ip_prefix": None}, DEFAULT_EGRESS),
    ({"direction": "egress", "ethertype": "IPv6", "protocol": None, "remote_ip_prefix": None},
     SecurityRule("outbound", "ALL", "-1", "-1", "::/0")),
    ({"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
      "remote_ip_prefix": "0.0.0.0/0"}, SecurityRule("inbound", "TCP", "22", "22", "0.0.0.0/0")),
    ({"direction": "ingress", "ethertype": "IPv4", "protocol": "udp", "port_range_min": None,
      "port_range_max": None, "remote_ip_prefix": "10.0.0.0/8"}, SecurityRule("inbound", "UDP", "1", "65535", "10.0.0.0/8")),
    ({"direction": "ingress", "ethertype": "IPv4", "protocol": "icmp", "port_range_min": 8, "port_range_max": 0,
      "remote_ip_prefix": None}, SecurityRule("inbound", "ICMP", "-1", "-1", "0.0.0.0/0")),
    ({"direction": "ingress", "ethertype": "IPv4", "protocol": "6", "port_range_min": 80, "port_range_max": 90,
      "remote_ip_prefix": "1.2.3.4/32"}, SecurityRule("inbound", "TCP", "80", "90", "1.2.3.4/32")),
])
def test_neutron_to_rule(nr, rule):
    assert neutron_to_rule(nr) == rule


def test_neutron_rules_cb_spider_cannot_express_are_skipped():
    assert neutron_to_rule({"direction": "ingress", "ethertype": "IPv4", "protocol": None,
                            "remote_group_id": "sg-x"}) is None
    assert neutron_to_rule({"direction": "ingress", "ethertype": "IPv4", "protocol": "gre"}) is None


def test_round_trip_every_protocol_and_direction():
    for rule in [SecurityRule(d, p, f, t, c) for d in ("inbound", "outbound")
                 for p, f, t in (("TCP", "22", "22"), ("UDP", "1000", "2000"), ("ICMP", "-1", "-1"), ("ALL", "-1", "-1"))
                 for c in ("0.0.0.0/0", "192.168.0.0/16", "::/0")]:
        assert neutron_to_rule(rule_to_neutron(rule)) == rule


def test_rule_key_normalises():
    assert rule_key(SecurityRule("INBOUND", "tcp", " 22", "22 ", "")) == SecurityRule("inbound", "TCP", "22", "22",
                                                                                    "0.0.0.0/0")
    assert rule_key(SecurityRule("inbound", "icmp", "8", "0", "0.0.0.0/0")).from_port == "-1"
    assert rule_key(SecurityRule("inbound", "-1", "", "", "10.1.2.3/8")) == SecurityRule("inbound", "ALL", "-1", "-1",
                                                                                       "10.0.0.0/8")


def test_default_egress_recognition_and_group_order():
    v4 = {"id": "r1", "direction": "egress", "ethertype": "IPv4", "protocol": None, "remote_ip_prefix": None}
    v6 = {"id": "r2", "direction": "egress", "ethertype": "IPv6", "protocol": None, "remote_ip_prefix": None}
    ssh = {"id": "r3", "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22,
           "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}
    assert is_default_v4_egress(v4) and not is_default_v4_egress(v6) and not is_default_v4_egress(ssh)
    assert is_default_v6_egress(v6) and not is_default_v6_egress(v4)
    rules = rules_from_group({"security_group_rules": [v4, v6, ssh]})
    assert [r for r, _ in rules][0].direction == "inbound"
    assert ("r3", "r1", "r2") == tuple(rid for _, rid in rules)


# ---- VM status -----------------------------------------------------------------------------------

@pytest.mark.parametrize("status, task, want", [
    ("BUILD", "spawning", VMStatus.CREATING), ("BUILD", None, VMStatus.CREATING),
    ("ACTIVE", None, VMStatus.RUNNING), ("SUSPENDED", None, VMStatus.SUSPENDED),
    ("SHUTOFF", None, VMStatus.SUSPENDED), ("PAUSED", None, VMStatus.SUSPENDED),
    ("REBOOT", "reboot_started", VMStatus.REBOOTING), ("HARD_REBOOT", None, VMStatus.REBOOTING),
    ("ACTIVE", "suspending", VMStatus.SUSPENDING), ("SUSPENDED", "resuming", VMStatus.RESUMING),
    ("ACTIVE", "deleting", VMStatus.TERMINATING), ("SUSPENDED", "deleting", VMStatus.TERMINATING),
    ("ACTIVE", "rebooting", VMStatus.REBOOTING), ("SHUTOFF", "powering-on", VMStatus.RESUMING),
    ("ACTIVE", "powering-off", VMStatus.SUSPENDING), ("ERROR", None, VMStatus.FAILED),
    ("DELETED", None, VMStatus.TERMINATED), ("SOMETHING-NEW", None, VMStatus.FAILED),
])
def test_vm_status(status, task, want):
    assert vm_status({"status": status, "OS-EXT-STS:task_state": task}) == want


def test_settled():
    assert is_settled({"status": "ACTIVE", "OS-EXT-STS:task_state": None})
    assert is_settled({"status": "SUSPENDED"})
    assert not is_settled({"status": "ACTIVE", "OS-EXT-STS:task_state": "suspending"})
    assert not is_settled({"status": "REBOOT"})
    assert not is_settled({"status": "BUILD"})


# ---- NLB, images ---------------------------------------------------------------------------------

@pytest.mark.parametrize("op, healthy", [("ONLINE", True), ("NO_MONITOR", True), ("ERROR", False),
                                         ("OFFLINE", False), ("DRAINING", False), ("", False)])
def test_member_health(op, healthy):
    assert member_healthy({"operating_status": op}) is healthy


def test_monitor_types():
    assert monitor_type("tcp") == "TCP" and monitor_type("") == "TCP" and monitor_type("UDP") == "UDP-CONNECT"
    assert monitor_protocol("UDP-CONNECT") == "UDP" and monitor_protocol("HTTP") == "HTTP"
    with pytest.raises(DriverError):
        monitor_type("FTP")


def test_image_properties():
    img = {"name": "ubuntu-22.04", "os_type": "linux", "os_distro": "ubuntu", "os_version": "22.04",
           "architecture": "x86_64"}
    assert image_platform(img) == "Linux/UNIX" and image_distribution(img) == "ubuntu 22.04"
    assert image_arch(img) == "x86_64" and image_arch({"architecture": "aarch64"}) == "arm64"
    assert image_arch({}) == "NA" and image_distribution({"name": "x"}) == "x"
    assert image_platform({"os_type": "windows"}) == "Windows"


def test_descriptions_round_trip_and_stay_short():
    text = describe(IPv4_CIDR="10.0.0.0/16", Tags={"k": "v"})
    assert described(text) == {"IPv4_CIDR": "10.0.0.0/16", "Tags": {"k": "v"}}
    long = describe(IPv4_CIDR="10.0.0.0/16", Tags={f"key{i}": "v" * 20 for i in range(20)})
    assert len(long) <= 255 and described(long) == {"IPv4_CIDR": "10.0.0.0/16"}
    assert described("a network somebody else made") == {} and described(None) == {}


# ---- errors --------------------------------------------------------------------------------------

def test_error_bodies_of_every_service():
    assert parse_error_body({"NeutronError": {"type": "SecurityGroupInUse", "message": "Security Group x in use.",
                                              "detail": ""}}) == ("SecurityGroupInUse", "Security Group x in use.")
    assert parse_error_body({"itemNotFound": {"code": 404, "message": "Instance x could not be found."}}) == \
        ("itemNotFound", "Instance x could not be found.")
    assert parse_error_body({"faultcode": "Client", "faultstring": "Load Balancer x not found.",
                             "debuginfo": None}) == ("", "Load Balancer x not found.")
    assert parse_error_body({"error": {"code": 401, "message": "nope", "title": "Unauthorized"}}) == \
        ("Unauthorized", "nope")
    assert parse_error_body("404 Not Found\n\nNo image found") == ("", "404 Not Found\n\nNo image found")


def test_not_found_and_conflict_mapping():
    err = error_from_response("compute", "GET /servers/x", 404,
                              {"itemNotFound": {"code": 404, "message": "Instance x could not be found."}})
    assert isinstance(err, OpenStackNotFound) and isinstance(err, DriverNotFound) and is_not_found(err)
    assert "Instance x could not be found." in str(err)
    err = error_from_response("network", "POST /security-group-rules", 409,
                              {"NeutronError": {"type": "SecurityGroupRuleExists",
                                                "message": "Security group rule already exists. Rule id is r."}})
    assert isinstance(err, OpenStackError) and not is_not_found(err)
    assert err.http_status == 409 and err.error_type == "SecurityGroupRuleExists"
    assert err.status == 500  # what Spider answers is unchanged


@pytest.mark.parametrize("status", [413, 429, 503])
def test_throttling_keeps_status_and_retry_after(status):
    err = error_from_response("compute", "POST /servers", status,
                              {"overLimit": {"code": status, "message": "This request was rate-limited."}},
                              {"Retry-After": "7"})
    assert isinstance(err, OpenStackError) and err.http_status == status and err.retry_after == 7.0
    assert str(status) in str(err) and "Retry-After: 7" in str(err)
    nova = error_from_response("compute", "POST /servers", 429,
                               {"overLimit": {"code": 429, "message": "x", "retryAfter": "3"}})
    assert nova.retry_after == 3.0 and "Retry-After: 3" in str(nova)


def test_connection_failures_name_the_endpoint_not_the_password():
    from keystoneauth1 import exceptions as ks
    err = map_exception(ks.ConnectFailure("Unable to establish connection to http://x:1/v3"), "http://10.0.0.1:8192/v3")
    assert isinstance(err, DriverError) and "http://10.0.0.1:8192/v3" in str(err)
    err = map_exception(ks.ConnectTimeout("slow"), "http://10.0.0.1:8192/v3")
    assert "timed out" in str(err)
    err = map_exception(ks.Unauthorized("bad", http_status=401), "http://h/v3")
    assert isinstance(err, OpenStackError) and err.http_status == 401 and "authentication failed" in str(err)


# ---- drivers -------------------------------------------------------------------------------------

def test_cloudtwin_login_options():
    d = CloudTwinDriver()
    info = ConnectionInfo("CLOUDTWIN", {"identityendpoint": "http://127.0.0.1:8192/", "DomainName": "cloud-1",
                                        "MockName": "mock_name01"}, "default")
    auth, url = d.auth_options(info)
    assert url == "http://127.0.0.1:8192/v3" and auth["auth_url"] == url
    assert auth["username"] == "admin" and auth["password"] == "admin"
    assert auth["user_domain_name"] == auth["project_domain_name"] == "cloud-1"
    assert auth["project_name"] == "mock_name01"
    assert d.auth_url("http://h:1/v3") == "http://h:1/v3"
    auth, _ = d.auth_options(ConnectionInfo("CLOUDTWIN", {"IdentityEndpoint": "http://h", "DomainName": "c",
                                                          "MockName": "m", "Username": "u", "Password": "p"}, ""))
    assert (auth["username"], auth["password"]) == ("u", "p")
    assert d.region_of(ConnectionInfo("CLOUDTWIN", {}, "")) == "default"
    assert d.capability().probe_ssh_after_start is False and OpenStackDriver().capability().probe_ssh_after_start
    assert d.credential_keys() == ["IdentityEndpoint", "DomainName", "MockName"] and d.region_keys() == ["Region"]
    with pytest.raises(DriverError, match="MockName"):
        d.auth_options(ConnectionInfo("CLOUDTWIN", {"IdentityEndpoint": "http://h", "DomainName": "c"}, ""))


def test_openstack_login_options_and_secret_free_repr():
    d = OpenStackDriver()
    cred = {"IdentityEndpoint": "https://keystone:5000/v3", "Username": "u", "Password": "s3cret",
            "DomainName": "Default", "ProjectID": "p1"}
    auth, url = d.auth_options(ConnectionInfo("OPENSTACK", cred, "RegionOne", "nova"))
    assert auth["project_id"] == "p1" and auth["user_domain_name"] == "Default" and url == cred["IdentityEndpoint"]
    with pytest.raises(DriverError) as err:
        d.auth_options(ConnectionInfo("OPENSTACK", {**cred, "Password": ""}, "RegionOne"))
    assert "s3cret" not in str(err.value)
    assert d.region_keys() == ["Region", "Zone"]


async def test_entry_points_registered():
    from spider_core.drivers.registry import DriverRegistry
    reg = DriverRegistry()
    assert reg.has("OPENSTACK") and reg.has("CLOUDTWIN")
    assert isinstance(await reg.get("CLOUDTWIN"), CloudTwinDriver)
    await reg.close()


def test_tags_helpers():
    from spider_core.drivers.openstack.mapping import tags_in, tags_out
    assert tags_out({"Tags": tags_in([KeyValue("a", "1"), KeyValue("", "x")])}) == [KeyValue("a", "1")]


def test_errors_name_the_spider_connection_except_plain_not_found():
    err = error_from_response("network", "POST /networks", 503, {"NeutronError": {"type": "ServiceUnavailable",
                                                                                 "message": "outage"}},
                              {"Retry-After": "3"}, connection="ct-config")
    assert "503" in str(err) and "ct-config" in str(err) and "Retry-After: 3" in str(err)
    assert "ct-config" not in str(error_from_response("compute", "GET /servers/x", 404, {}, connection="ct-config"))
