"""The issue's acceptance script: unmodified openstacksdk builds a small lab on Cloud-Twin — network,
subnet, security group + rule, keypair, a server to ACTIVE, a load balancer with listener, pool,
member and health monitor — then takes it all down. Every step is checked against what the twin holds."""

from __future__ import annotations

import openstack.exceptions
import pytest

from twin_helpers import sdk_connect


def test_openstacksdk_lab_script_runs_unmodified(threaded_twin):
    conn = sdk_connect(threaded_twin.url, cloud="cloud-5", project="lab")
    net = conn.network.create_network(name="lab-net")
    subnet = conn.network.create_subnet(network_id=net.id, name="lab-subnet", cidr="10.20.0.0/24", ip_version=4)
    sg = conn.network.create_security_group(name="lab-sg", description="lab")
    rule = conn.network.create_security_group_rule(security_group_id=sg.id, direction="ingress", ethertype="IPv4",
                                                   protocol="tcp", port_range_min=22, port_range_max=22,
                                                   remote_ip_prefix="0.0.0.0/0")
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.network.create_security_group_rule(security_group_id=sg.id, direction="ingress", ethertype="IPv4",
                                                protocol="tcp", port_range_min=22, port_range_max=22,
                                                remote_ip_prefix="0.0.0.0/0")
    kp = conn.compute.create_keypair(name="lab-kp")
    assert kp.private_key and "PRIVATE KEY" in kp.private_key
    flavor = next(f for f in conn.compute.flavors() if f.name == "m1.small")
    image = next(i for i in conn.image.images() if i.name == "ubuntu-22.04")
    server = conn.compute.create_server(name="lab-vm", flavor_id=flavor.id, image_id=image.id, key_name="lab-kp",
                                        networks=[{"uuid": net.id}], security_groups=[{"name": "lab-sg"}])
    server = conn.compute.wait_for_server(server, status="ACTIVE", interval=0.1, wait=30)
    assert server.status == "ACTIVE" and server.key_name == "lab-kp"
    [addr] = server.addresses["lab-net"]
    assert addr["addr"].startswith("10.20.0.")
    ports = list(conn.network.ports(device_id=server.id))
    assert len(ports) == 1 and ports[0].security_group_ids == [sg.id] and ports[0].status == "ACTIVE"

    lb = conn.load_balancer.create_load_balancer(name="lab-lb", vip_subnet_id=subnet.id)
    lb = conn.load_balancer.wait_for_load_balancer(lb.id, interval=0.1, wait=30)
    assert lb.provisioning_status == "ACTIVE" and lb.vip_address.startswith("10.20.0.")
    listener = conn.load_balancer.create_listener(name="lab-l", protocol="TCP", protocol_port=22,
                                                  load_balancer_id=lb.id)
    conn.load_balancer.wait_for_load_balancer(lb.id, interval=0.1, wait=30)
    pool = conn.load_balancer.create_pool(name="lab-p", protocol="TCP", lb_algorithm="ROUND_ROBIN",
                                          listener_id=listener.id)
    conn.load_balancer.wait_for_load_balancer(lb.id, interval=0.1, wait=30)
    member = conn.load_balancer.create_member(pool, address=addr["addr"], protocol_port=22, subnet_id=subnet.id)
    conn.load_balancer.wait_for_load_balancer(lb.id, interval=0.1, wait=30)
    conn.load_balancer.create_health_monitor(pool_id=pool.id, type="TCP", delay=5, timeout=3, max_retries=3)
    conn.load_balancer.wait_for_load_balancer(lb.id, interval=0.1, wait=30)
    assert conn.load_balancer.get_member(member, pool).operating_status == "ONLINE", "the member's server runs"

    # what the twin holds is what the SDK was told
    cloud = threaded_twin.twin.clouds["cloud-5"]
    region = cloud.regions["RegionOne"]
    assert threaded_twin.call(lambda: region.nova.servers[server.id].state) == "ACTIVE"
    assert rule.id in threaded_twin.call(lambda: region.neutron.security_group_rules)

    conn.load_balancer.delete_load_balancer(lb.id, cascade=True)
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, interval=0.1, wait=30)
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.compute.get_server(server.id)
    conn.compute.delete_keypair("lab-kp")
    conn.network.delete_security_group(sg)
    conn.network.delete_subnet(subnet)
    conn.network.delete_network(net)
    counts = threaded_twin.call(lambda: {**region.nova.counts(), **region.neutron.counts()})
    assert counts["servers"] == 0 and counts["keypairs"] == 0 and counts["ports"] <= 1, counts
