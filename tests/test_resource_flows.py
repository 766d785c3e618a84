"""End-to-end resource flows over REST on MOCK (moto): SG rules, VM lifecycle, NLB, register/
unregister, the all-lists, and destroy — each asserting CB-Spider's shapes and the MetaDB afterwards."""

from __future__ import annotations

VPC = {"Name": "vpc-f", "IPv4_CIDR": "10.20.0.0/16",
       "SubnetInfoList": [{"Name": "sub-a", "IPv4_CIDR": "10.20.1.0/24"},
                          {"Name": "sub-b", "IPv4_CIDR": "10.20.2.0/24", "Zone": "default-z3"}]}
RULE_SSH = {"Direction": "inbound", "IPProtocol": "tcp", "FromPort": "22", "ToPort": "22", "CIDR": "10.0.0.0/8"}
RULE_ICMP = {"Direction": "INBOUND", "IPProtocol": "icmp", "FromPort": "-1", "ToPort": "-1"}


async def ok(srv, method, path, body=None, **kw):
    reply = await srv.call(method, path, body, **kw)
    assert reply.status == 200, f"{method} {path}: {reply.status} {reply.text}"
    return reply.json


async def base(srv):
    await ok(srv, "POST", "vpc", srv.body(VPC))
    await ok(srv, "POST", "securitygroup", srv.body({"Name": "sg-f", "VPCName": "vpc-f", "SecurityRules": [RULE_SSH]}))
    await ok(srv, "POST", "keypair", srv.body({"Name": "key-f"}))


async def test_subnet_zones_and_get_subnet(mock_server):
    srv = mock_server
    vpc = await ok(srv, "POST", "vpc", srv.body(VPC))
    zones = {s["IId"]["NameId"]: s["Zone"] for s in vpc["SubnetInfoList"]}
    assert zones == {"sub-a": "default-z1", "sub-b": "default-z3"}  # no zone given: the region's first
    sub = await ok(srv, "GET", "vpc/vpc-f/subnet/sub-b", params={"ConnectionName": srv.conn})
    assert list(sub) == ["IId", "Zone", "IPv4_CIDR"] and sub["IPv4_CIDR"] == "10.20.2.0/24"
    missing = await srv.call("GET", "vpc/vpc-f/subnet/nope", params={"ConnectionName": srv.conn})
    assert missing.status == 404 and missing.json == {"message": "Subnet not found"}
    bad_zone = await srv.call("POST", "vpc/vpc-f/subnet", srv.body({"Name": "sub-c", "IPv4_CIDR": "10.20.3.0/24",
                                                                   "Zone": "pluto-z1"}))
    assert bad_zone.status == 500 and "pluto-z1" in bad_zone.json["message"]
    assert await srv.sp.db.get_iid(srv.conn, "subnet", "sub-c", "vpc-f") is None


async def test_security_group_rules(mock_server):
    srv = mock_server
    await base(srv)
    sg = await ok(srv, "GET", "securitygroup/sg-f", params={"ConnectionName": srv.conn})
    assert sg["VpcIID"]["NameId"] == "vpc-f"
    rules = sg["SecurityRules"]
    assert {"Direction": "inbound", "IPProtocol": "TCP", "FromPort": "22", "ToPort": "22", "CIDR": "10.0.0.0/8"} in rules
    # EC2's default egress rule (documented difference from CB-Spider's mock)
    assert {"Direction": "outbound", "IPProtocol": "ALL", "FromPort": "-1", "ToPort": "-1", "CIDR": "0.0.0.0/0"} in rules
    added = await ok(srv, "POST", "securitygroup/sg-f/rules", srv.body({"RuleInfoList": [RULE_ICMP]}))
    assert {"Direction": "inbound", "IPProtocol": "ICMP", "FromPort": "-1", "ToPort": "-1", "CIDR": "0.0.0.0/0"} \
        in added["SecurityRules"]
    dup = await srv.call("POST", "securitygroup/sg-f/rules", srv.body({"RuleInfoList": [RULE_ICMP]}))
    assert dup.status == 500 and "already" in dup.json["message"]
    assert (await ok(srv, "DELETE", "securitygroup/sg-f/rules", srv.body({"RuleInfoList": [RULE_ICMP]}))) == \
        {"Result": "true"}
    again = await srv.call("DELETE", "securitygroup/sg-f/rules", srv.body({"RuleInfoList": [RULE_ICMP]}))
    assert again.status == 500 and "does not have this rule" in again.json["message"]
    unknown = await srv.call("POST", "securitygroup/sg-x/rules", srv.body({"RuleInfoList": [RULE_ICMP]}))
    assert unknown.json == {"message": "The Security Group 'sg-x' does not exist!"}
    by_vpc = await ok(srv, "GET", "securitygroup/vpc/vpc-f", params={"ConnectionName": srv.conn})
    assert [s["IId"]["NameId"] for s in by_vpc["securitygroup"]] == ["sg-f"]


async def test_vm_lifecycle(mock_server):
    srv = mock_server
    await base(srv)
    vm = await ok(srv, "POST", "vm", srv.body({"Name": "vm-f", "ImageName": "mock-vmimage-01", "VPCName": "vpc-f",
                                               "SubnetName": "sub-a", "SecurityGroupNames": ["sg-f"],
                                               "VMSpecName": "mock-vmspec-01", "KeyPairName": "key-f"}))
    assert vm["IId"]["NameId"] == "vm-f" and vm["IId"]["SystemId"].startswith("i-")
    assert vm["VpcIID"]["NameId"] == "vpc-f" and vm["SubnetIID"]["NameId"] == "sub-a"
    assert [s["NameId"] for s in vm["SecurityGroupIIds"]] == ["sg-f"] and vm["KeyPairIId"]["NameId"] == "key-f"
    assert vm["ImageIId"] == {"NameId": "mock-vmimage-01", "SystemId": "mock-vmimage-01"}
    assert vm["PublicIP"] and vm["SSHAccessPoint"] == vm["PublicIP"] + ":22" and vm["VMUserId"] == "cb-user"
    assert vm["Region"] == {"Region": "default", "Zone": "default-z1"}
    assert vm["NICs"][0]["IId"]["NameId"] == "default"
    usage = await ok(srv, "GET", "getvmusingresources", params={"ConnectionName": srv.conn,
                                                                "CSPId": vm["IId"]["SystemId"]})
    assert usage["Resources"]["VPC"]["NameId"] == "vpc-f" and usage["Resources"]["VMKey"]["NameId"] == "key-f"
    q = {"ConnectionName": srv.conn}
    assert (await ok(srv, "GET", "controlvm/vm-f", params={**q, "action": "suspend"})) == {"Status": "Suspending"}
    assert (await ok(srv, "GET", "vmstatus/vm-f", params=q)) == {"Status": "Suspended"}
    bad = await srv.call("GET", "controlvm/vm-f", params={**q, "action": "explode"})
    assert bad.json == {"message": "explode is not a valid action!!"}
    reboot = await srv.call("GET", "controlvm/vm-f", params={**q, "action": "reboot"})
    assert reboot.status == 500  # EC2 cannot reboot a stopped instance
    assert (await ok(srv, "PUT", "controlvm/vm-f", srv.body(), params={"action": "resume"})) == {"Status": "Resuming"}
    statuses = await ok(srv, "GET", "vmstatus", params=q)
    assert statuses == {"vmstatus": [{"IId": vm["IId"], "VmStatus": "Running"}]}
    assert (await ok(srv, "DELETE", "vm/vm-f", srv.body()))["Status"] in ("Terminating", "Terminated")
    assert await srv.sp.db.get_iid(srv.conn, "vm", "vm-f") is None
    assert (await ok(srv, "GET", "vm", params=q)) == {"vm": []}


async def test_nlb_flow(mock_server):
    srv = mock_server
    await base(srv)
    for name in ("vm-1", "vm-2"):
        await ok(srv, "POST", "vm", srv.body({"Name": name, "ImageName": "mock-vmimage-01", "VPCName": "vpc-f",
                                              "SubnetName": "sub-a", "SecurityGroupNames": ["sg-f"],
                                              "VMSpecName": "mock-vmspec-01", "KeyPairName": "key-f"}))
    nlb = await ok(srv, "POST", "nlb", srv.body({
        "Name": "spider-nlb-01", "VPCName": "vpc-f", "Type": "public", "Scope": "region",
        "Listener": {"Protocol": "tcp", "Port": "22"},
        "VMGroup": {"Protocol": "TCP", "Port": "22", "VMs": ["vm-1"]},
        "HealthChecker": {"Protocol": "TCP", "Port": "22", "Interval": "default", "Timeout": "default",
                          "Threshold": "default"}}))
    assert list(nlb)[:9] == ["IId", "VpcIID", "Type", "Scope", "Listener", "VMGroup", "HealthChecker",
                             "CreatedTime", "TagList"][: len(list(nlb)[:9])]
    assert nlb["Type"] == "PUBLIC" and nlb["Scope"] == "REGION" and nlb["Listener"]["Protocol"] == "TCP"
    assert nlb["VpcIID"]["NameId"] == "vpc-f"
    assert [v["NameId"] for v in nlb["VMGroup"]["VMs"]] == ["vm-1"]
    assert nlb["HealthChecker"]["Interval"] == 10 and nlb["HealthChecker"]["Threshold"] == 3
    added = await ok(srv, "POST", "nlb/spider-nlb-01/vms", srv.body({"VMs": ["vm-2"]}))
    assert sorted(v["NameId"] for v in added["VMGroup"]["VMs"]) == ["vm-1", "vm-2"]
    health = await ok(srv, "GET", "nlb/spider-nlb-01/health", params={"ConnectionName": srv.conn})
    assert sorted(v["NameId"] for v in health["healthinfo"]["AllVMs"]) == ["vm-1", "vm-2"]
    changed = await ok(srv, "PUT", "nlb/spider-nlb-01/healthchecker",
                       srv.body({"Protocol": "TCP", "Port": "22", "Interval": "30", "Timeout": "-1",
                                 "Threshold": "5"}))
    assert changed["HealthChecker"]["Interval"] == 30 and changed["HealthChecker"]["Threshold"] == 5
    bad = await srv.call("PUT", "nlb/spider-nlb-01/healthchecker", srv.body({"Protocol": "TCP", "Interval": "abc"}))
    assert bad.status == 500 and 'parsing "abc": invalid syntax' in bad.json["message"]
    unknown_vm = await srv.call("POST", "nlb/spider-nlb-01/vms", srv.body({"VMs": ["vm-9"]}))
    assert unknown_vm.json == {"message": f"VM 'vm-9' does not exist in connection '{srv.conn}'"}
    assert (await ok(srv, "DELETE", "nlb/spider-nlb-01/vms", srv.body({"VMs": ["vm-2"]}))) == {"Result": "true"}
    owner = await ok(srv, "POST", "getnlbowner", srv.body({"CSPId": nlb["IId"]["SystemId"]}))
    assert owner["NameId"] == "vpc-f"
    assert (await ok(srv, "DELETE", "nlb/spider-nlb-01", srv.body())) == {"Result": "true"}


async def test_all_lists_register_unregister(mock_server):
    srv = mock_server
    await base(srv)
    q = {"ConnectionName": srv.conn}
    all_vpc = (await ok(srv, "GET", "allvpc", params=q))["AllList"]
    assert [i["NameId"] for i in all_vpc["MappedList"]] == ["vpc-f"] and all_vpc["OnlySpiderList"] == []
    csp_id = all_vpc["MappedList"][0]["SystemId"]
    # unregister: the MetaDB forgets, the cloud keeps it
    assert (await ok(srv, "DELETE", "regvpc/vpc-f", srv.body())) == {"Result": "true"}
    assert await srv.sp.db.get_iid(srv.conn, "subnet", "sub-a", "vpc-f") is None
    all_vpc = (await ok(srv, "GET", "allvpc", params=q))["AllList"]
    assert csp_id in [i["SystemId"] for i in all_vpc["OnlyCSPList"]]
    # register it again under another name; its subnets come back as <name>-subnet-<n>
    reg = await ok(srv, "POST", "regvpc", srv.body({"Name": "adopted", "CSPId": csp_id}))
    assert reg["IId"] == {"NameId": "adopted", "SystemId": csp_id}
    assert sorted(s["IId"]["NameId"] for s in reg["SubnetInfoList"]) == ["adopted-subnet-1", "adopted-subnet-2"]
    info = await ok(srv, "GET", "allvpcinfo", params=q)
    assert info["ResourceType"] == "vpc"
    assert [v["IId"]["NameId"] for v in info["AllListInfo"]["MappedInfoList"]] == ["adopted"]
    counts = [(await ok(srv, "GET", f"count{t}/{srv.conn}"))["count"] for t in ("vpc", "subnet", "securitygroup",
                                                                                 "keypair", "vm", "nlb")]
    assert counts == [1, 2, 1, 1, 0, 0]
    keys = await ok(srv, "GET", "allkeypairinfo", params=q)
    assert keys["AllListInfo"]["MappedInfoList"][0]["PrivateKey"] == "Hidden for security."


async def test_destroy_removes_everything_in_order(mock_server):
    srv = mock_server
    await base(srv)
    await ok(srv, "POST", "vm", srv.body({"Name": "vm-d", "ImageName": "mock-vmimage-02", "VPCName": "vpc-f",
                                          "SubnetName": "sub-b", "SecurityGroupNames": ["sg-f"],
                                          "VMSpecName": "mock-vmspec-02", "KeyPairName": "key-f"}))
    result = await ok(srv, "DELETE", "destroy", srv.body())
    assert result["IsAllDestroyed"] is True
    types = [e["ResourceType"] for e in result["DeletedAllListByResourceType"]]
    assert types.index("vm") < types.index("sg") < types.index("vpc") and "keypair" in types
    for entry in result["DeletedAllListByResourceType"]:
        assert entry["IsAllDeleted"] is True and entry["RemainedErrorInfoList"] == []
    dump = await srv.dump()
    assert [r for r in dump["iid_infos"] if r[0] == srv.conn] == []
    assert (await ok(srv, "DELETE", "destroy", srv.body())) == {"IsAllDestroyed": True,
                                                                "DeletedAllListByResourceType": None}
    assert srv.sp.locks.entry_count() == 0
