"""The moto/botocore speed-ups (mock_driver/moto_speedups.py) apply on the installed moto and keep
behaviour unchanged.

Each replacement keeps moto's original as ``__wrapped__``; the tests compare patched and original
results on the same moto state, and check errors and tags through a real client. They use the
in-process ``MotoBackend.local()`` whatever the mode (the worker applies the same speed-ups: see
test_moto_worker). CI runs this module on the newest moto release too, so a speed-up that stops
applying (or stops being equivalent) fails here the day moto changes.
"""

import uuid

import pytest
from botocore.exceptions import ClientError

from mock_driver import moto_speedups
from mock_driver.moto_backend import MotoBackend


def _ts(rt, name, extra=()):
    return [{"ResourceType": rt, "Tags": [{"Key": "Name", "Value": name}, *extra]}]


@pytest.fixture
def ec2():
    backend = MotoBackend.local()  # these tests look at moto's objects: moto in this process
    assert backend.patched
    account = "8" + uuid.uuid4().int.__str__()[:11]
    client = backend.client(account, "us-east-1", "ec2")
    return backend, account, client


def _run(backend, fn):
    return backend.executor.submit(fn).result()


def _ec2_backend(account):
    from moto.ec2.models import ec2_backends
    return ec2_backends[account]["us-east-1"]


def test_every_speedup_applies_on_the_installed_moto():
    active = moto_speedups.apply_all()
    assert {k: active.get(k) for k in ("method_names", "ec2_tags_by_resource", "ec2_exact_filters",
                                       "ec2_security_group_by_id")} == dict.fromkeys(
        ("method_names", "ec2_tags_by_resource", "ec2_exact_filters", "ec2_security_group_by_id"), True)


def test_a_speedup_whose_target_changed_shape_is_not_applied(monkeypatch, caplog):
    from moto.ec2.models.security_groups import SecurityGroupBackend
    monkeypatch.setattr(moto_speedups, "_applied", {})

    def get_security_group_from_id(self, group_id, vpc_id=None):  # a future moto's signature
        return None

    monkeypatch.setattr(SecurityGroupBackend, "get_security_group_from_id", get_security_group_from_id)
    assert moto_speedups.ec2_security_group_by_id() is False
    assert SecurityGroupBackend.get_security_group_from_id is get_security_group_from_id
    assert "not applied" in caplog.text

    def boom():
        raise AttributeError("moto moved it")

    assert moto_speedups._once("probe", boom) is False  # an exception means "not applied", never a crash


def test_method_names_same_as_moto():
    moto_speedups.apply_all()
    import moto.core.responses as responses
    import moto.core.utils as utils
    from moto.ec2.responses import EC2Response
    from moto.elbv2.responses import ELBV2Response
    fast = utils.method_names_from_class
    assert getattr(fast, "_spidertwin", False) and responses.method_names_from_class is fast
    for cls in (EC2Response, ELBV2Response, dict):
        got = fast(cls)
        assert got == fast.__wrapped__(cls) and isinstance(got, list)
        got.append("mutated")  # a caller's copy: the cache stays clean
        assert "mutated" not in fast(cls)


def test_tags_by_resource_same_as_moto(ec2):
    backend, account, client = ec2
    vpc = _run(backend, lambda: client.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=_ts(
        "vpc", "v", [{"Key": "b", "Value": "2"}, {"Key": "a", "Value": ""}])))["Vpc"]["VpcId"]
    bare = _run(backend, lambda: client.create_vpc(CidrBlock="10.1.0.0/16"))["Vpc"]["VpcId"]
    sn = _run(backend, lambda: client.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24",
                                                    TagSpecifications=_ts("subnet", "s")))["Subnet"]["SubnetId"]
    _run(backend, lambda: client.create_tags(Resources=[vpc], Tags=[{"Key": "c", "Value": "3"}]))
    _run(backend, lambda: client.delete_tags(Resources=[vpc], Tags=[{"Key": "b"}]))
    from moto.ec2.models.core import TaggedEC2Resource
    patched = TaggedEC2Resource.get_tags
    assert getattr(patched, "_spidertwin", False)
    be = _ec2_backend(account)
    objects = [be.vpcs[vpc], be.vpcs[bare], be.get_subnet(sn), *be.vpcs.values()]
    for obj in objects:
        assert patched(obj) == patched.__wrapped__(obj), obj.id
    assert [t["key"] for t in patched(be.vpcs[vpc])] == ["Name", "a", "c"]
    assert patched(be.vpcs[bare]) == []
    out = _run(backend, lambda: client.describe_vpcs(VpcIds=[vpc]))["Vpcs"][0]
    assert {t["Key"]: t["Value"] for t in out["Tags"]} == {"Name": "v", "a": "", "c": "3"}


def test_generic_filter_same_as_moto(ec2):
    backend, account, client = ec2
    vpcs, subnets = [], []
    for i in range(4):
        v = _run(backend, lambda i=i: client.create_vpc(
            CidrBlock=f"10.{i}.0.0/16", TagSpecifications=_ts("vpc", f"v{i}", [{"Key": "k", "Value": str(i % 2)}])))
        vpcs.append(v["Vpc"]["VpcId"])
        for j in range(2):
            s = _run(backend, lambda i=i, j=j: client.create_subnet(
                VpcId=vpcs[-1], CidrBlock=f"10.{i}.{j}.0/24", TagSpecifications=_ts("subnet", f"s{i}{j}")))
            subnets.append(s["Subnet"]["SubnetId"])
    import moto.ec2.models.subnets as msub
    import moto.ec2.models.vpcs as mvpc
    fast = mvpc.generic_filter
    assert getattr(fast, "_spidertwin", False) and msub.generic_filter is fast
    original = fast.__wrapped__
    be = _ec2_backend(account)
    all_vpcs = list(be.vpcs.values())
    all_subnets = [s for by_az in be.subnets.values() for s in by_az.values()]
    cases = [
        (all_vpcs, {"vpc-id": [vpcs[1]]}), (all_vpcs, {"vpc-id": vpcs[2]}),
        (all_vpcs, {"vpc-id": [vpcs[0], vpcs[3], "vpc-nope"]}), (all_vpcs, {"vpc-id": ["vpc-*"]}),
        (all_vpcs, {"isDefault": ["true"]}), (all_vpcs, {"isDefault": ["false"]}),
        (all_vpcs, {"tag:Name": ["v1"]}), (all_vpcs, {"tag:Name": ["v?"]}), (all_vpcs, {"tag:k": ["1"]}),
        (all_vpcs, {"tag-key": ["k"]}), (all_vpcs, {"cidr": ["10.2.0.0/16"]}),
        (all_vpcs, {"vpc-id": [vpcs[1]], "tag:Name": ["v1"]}), (all_vpcs, {"vpc-id": []}),
        (all_subnets, {"vpc-id": vpcs[0]}), (all_subnets, {"vpc-id": [vpcs[1], vpcs[2]]}),
        (all_subnets, {"subnet-id": [subnets[3]]}), (all_subnets, {"default-for-az": ["true"]}),
        (all_subnets, {"cidr-block": ["10.1.*"]}), (all_subnets, {"tag:Name": ["s21"]}),
        (all_subnets, {"availability-zone": ["us-east-1a"]}), (all_subnets, {}),
    ]
    for objs, filters in cases:
        assert fast(filters, objs) == original(filters, objs), filters
    assert [v.id for v in fast({"vpc-id": [vpcs[1]]}, all_vpcs)] == [vpcs[1]]
    # an unknown filter fails the same way
    with pytest.raises(Exception) as e_fast:
        fast({"no-such-filter": ["x"]}, all_vpcs)
    with pytest.raises(Exception) as e_orig:
        original({"no-such-filter": ["x"]}, all_vpcs)
    assert type(e_fast.value) is type(e_orig.value) and str(e_fast.value) == str(e_orig.value)
    # through the API
    out = _run(backend, lambda: client.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpcs[3]]}]))
    assert sorted(s["SubnetId"] for s in out["Subnets"]) == sorted(subnets[6:8])
    out = _run(backend, lambda: client.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpcs[2]]}]))
    assert [v["VpcId"] for v in out["Vpcs"]] == [vpcs[2]]
    assert {t["Key"]: t["Value"] for t in out["Vpcs"][0]["Tags"]} == {"Name": "v2", "k": "0"}


def test_subnet_conflict_still_raised(ec2):
    backend, _, client = ec2
    vpc = _run(backend, lambda: client.create_vpc(CidrBlock="10.0.0.0/16"))["Vpc"]["VpcId"]
    other = _run(backend, lambda: client.create_vpc(CidrBlock="10.0.0.0/16"))["Vpc"]["VpcId"]
    sn = _run(backend, lambda: client.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24",
                                                    TagSpecifications=_ts("subnet", "a")))["Subnet"]
    assert {t["Key"]: t["Value"] for t in sn["Tags"]} == {"Name": "a"}
    for cidr in ("10.0.1.0/24", "10.0.1.128/25", "10.0.0.0/20"):
        with pytest.raises(ClientError) as err:
            _run(backend, lambda cidr=cidr: client.create_subnet(VpcId=vpc, CidrBlock=cidr))
        assert err.value.response["Error"]["Code"] == "InvalidSubnet.Conflict"
    # the same CIDR in another VPC is fine
    _run(backend, lambda: client.create_subnet(VpcId=other, CidrBlock="10.0.1.0/24"))
    with pytest.raises(ClientError) as err:
        _run(backend, lambda: client.create_subnet(VpcId=vpc, CidrBlock="10.9.0.0/24"))
    assert err.value.response["Error"]["Code"] == "InvalidSubnet.Range"


def test_security_group_by_id_same_as_moto(ec2):
    backend, account, client = ec2
    vpc = _run(backend, lambda: client.create_vpc(CidrBlock="10.0.0.0/16"))["Vpc"]["VpcId"]
    gid = _run(backend, lambda: client.create_security_group(
        VpcId=vpc, GroupName="g1", Description="d", TagSpecifications=_ts("security-group", "g1")))["GroupId"]
    from moto.ec2.models.security_groups import SecurityGroupBackend
    patched = SecurityGroupBackend.get_security_group_from_id
    assert getattr(patched, "_spidertwin", False)
    be = _ec2_backend(account)
    default_ids = [g.id for by_vpc in be.groups.values() for g in by_vpc.values()]
    for key in [gid, "g1", "sg-00000000", "", *default_ids]:
        assert patched(be, key) is patched.__wrapped__(be, key), key
    with pytest.raises(ClientError) as err:
        _run(backend, lambda: client.create_security_group(VpcId=vpc, GroupName="g1", Description="d"))
    assert err.value.response["Error"]["Code"] == "InvalidGroup.Duplicate"
    perm = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    _run(backend, lambda: client.authorize_security_group_ingress(GroupId=gid, IpPermissions=perm))
    with pytest.raises(ClientError) as err:
        _run(backend, lambda: client.authorize_security_group_ingress(GroupId=gid, IpPermissions=perm))
    assert err.value.response["Error"]["Code"] == "InvalidPermission.Duplicate"
    with pytest.raises(ClientError) as err:
        _run(backend, lambda: client.authorize_security_group_ingress(GroupId="sg-0123456789abcdef0",
                                                                      IpPermissions=perm))
    assert err.value.response["Error"]["Code"] == "InvalidGroup.NotFound"
    got = _run(backend, lambda: client.describe_security_groups(
        Filters=[{"Name": "group-id", "Values": [gid]}]))["SecurityGroups"]
    assert len(got) == 1 and got[0]["IpPermissions"][0]["FromPort"] == 22
    assert {t["Key"]: t["Value"] for t in got[0]["Tags"]} == {"Name": "g1"}


def test_user_agent_cached_per_client(ec2):
    backend, account, client = ec2
    creator = client._user_agent_creator
    assert getattr(creator.to_string, "_spidertwin", False)
    import boto3
    fresh = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x").client(
        "ec2", region_name="us-east-1")
    # same string botocore would build (up to the per-call feature ids)
    assert creator.to_string().split(" ")[0] == fresh._user_agent_creator.to_string().split(" ")[0]
    # a second client of another region gets its own (cached) string and its own region
    other = backend.client(account, "eu-west-1", "ec2")
    assert other._user_agent_creator is not creator
    zones = _run(backend, lambda: other.describe_availability_zones())["AvailabilityZones"]
    assert zones and all(z["RegionName"] == "eu-west-1" for z in zones)
