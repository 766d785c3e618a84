"""Unit tests for the pieces the REST edge and the MetaDB stand on: ids, wire format, encryption."""

from __future__ import annotations

import json
import os
import re
import stat

import pytest

from spider_core import ids, wire
from spider_core.errors import SpiderError, is_not_found, DriverError, DriverNotFound
from spider_core.metadb import DuplicateRow, IIDRow, MetaDB
from spider_core.model import IID, KeyValue, CredentialInfo, SecurityRule, SubnetInfo, VPCInfo, normalise_rule
from spider_core.secrets import CredentialCipher, load_or_create_key

XID = re.compile(r"^[0-9a-v]{20}$")


def test_xid_shape_and_order():
    a, b = ids.new_xid(), ids.new_xid()
    assert XID.match(a) and XID.match(b)
    assert a != b and a < b  # time-ordered, then counter-ordered


@pytest.mark.parametrize("name, prefix", [
    ("vpc-01", "vpc-01-"), ("sg-01", "sg01-"), ("SG-Rules-Test-SG01", "sgrules-test-sg01-"),
    ("vpc_01", "vpc-01-"), ("1abc", "abc-"), ("héllo wörld", "hllowrld-"),
])
def test_sp_uuid_cleaning(name, prefix):
    uid = ids.new_sp_uuid(name)
    assert uid.startswith(prefix)
    assert XID.match(uid[len(prefix):])


def test_sp_uuid_length_limits():
    long = "a" * 300
    assert len(ids.new_sp_uuid(long, id_max_length=255)) == 255
    assert len(ids.new_sp_uuid(long, id_max_length=32)) == 32
    assert ids.new_sp_uuid(long, id_max_length=0).startswith("a" * 9 + "-")
    with pytest.raises(SpiderError, match="The Minimum ID Length must be greater than 21!"):
        ids.new_sp_uuid("x", id_max_length=21)
    assert ids.new_sp_uuid("vpc-01", provider="TENCENT").startswith("vpc_01_")
    assert ids.new_sp_uuid("My VPC", transform=False) == "My VPC"


def test_iid_views():
    stored = IID("vpc-01", "vpc-01-abc:vpc-0123")
    assert ids.to_user_iid(stored) == IID("vpc-01", "vpc-0123")
    assert ids.to_driver_iid(stored) == IID("vpc-01-abc", "vpc-0123")
    assert ids.csp_id_of("a:b:c") == "b:c"


def test_transform_mode(monkeypatch):
    monkeypatch.setenv("ID_TRANSFORM_MODE", "OFF")
    assert ids.transform_enabled(None) is False
    assert ids.transform_enabled("on") is True
    monkeypatch.delenv("ID_TRANSFORM_MODE")
    assert ids.transform_enabled("") is True and ids.transform_enabled("off") is False


def test_rule_normalisation():
    r = normalise_rule(SecurityRule("INBOUND", "tcp", "22", "22", ""))
    assert r == SecurityRule("inbound", "TCP", "22", "22", "0.0.0.0/0")
    assert r.text() == "{inbound TCP 22 22 0.0.0.0/0}"


def test_not_found_words():
    assert is_not_found(DriverNotFound("x"))
    assert is_not_found(DriverError("vpc-1 VPC does not exist!!"))
    assert is_not_found(DriverError("InvalidVpcID.NotFound: The vpc ID 'x' does not exist"))
    assert is_not_found(DriverError("Failed To Find the thing"))
    assert not is_not_found(DriverError("DependencyViolation: has dependencies"))


def test_decode_case_insensitive_and_types():
    body = {"connectionname": "c", "reqinfo": {"name": "v", "ipv4_cidr": "10.0.0.0/16", "unknown": 1,
                                               "SubnetInfoList": [{"NAME": "s", "IPv4_CIDR": "10.0.1.0/24"}]}}
    out = wire.decode(body, wire.envelope(wire.VPC_REQ))
    assert out == {"ConnectionName": "c", "ReqInfo": {"Name": "v", "IPv4_CIDR": "10.0.0.0/16",
                                                      "SubnetInfoList": [{"Name": "s", "IPv4_CIDR": "10.0.1.0/24"}]}}
    with pytest.raises(SpiderError, match=r"Unmarshal type error: expected=string, got=number, field=ReqInfo.Name"):
        wire.decode({"ReqInfo": {"Name": 5}}, wire.envelope(wire.VPC_REQ))
    with pytest.raises(SpiderError, match=r"Unmarshal type error.*field=ConnectionName"):
        wire.decode({"ConnectionName": ["a"]}, wire.envelope(None))
    assert wire.decode({"ConnectionName": None}, wire.envelope(None)) == {}


def test_parse_json_syntax_error():
    with pytest.raises(SpiderError, match=r"^code=400, message=Syntax error: offset=\d+"):
        wire.parse_json(b'{"a": x}')


def test_dumps_go_style():
    text = wire.dumps({"a": "<&>", "b": "ü"})
    assert text == '{"a":"\\u003c\\u0026\\u003e","b":"ü"}\n'
    assert json.loads(text) == {"a": "<&>", "b": "ü"}
    assert wire.dumps({"a": 1}, pretty=True) == '{\n  "a": 1\n}\n'


def test_vpc_encoding_key_order_and_omitempty():
    info = VPCInfo(IID("v", "id"), "10.0.0.0/16", [SubnetInfo(IID("s", "sid"), "", "10.0.1.0/24")])
    assert list(wire.vpc(info)) == ["IId", "IPv4_CIDR", "SubnetInfoList"]
    assert list(wire.vpc(info)["SubnetInfoList"][0]) == ["IId", "Zone", "IPv4_CIDR"]
    info.tags = [KeyValue("k", "v")]
    assert list(wire.vpc(info)) == ["IId", "IPv4_CIDR", "SubnetInfoList", "TagList"]
    # CB-Spider's description says array: [] even for a stub (CB-Spider itself sends null there)
    assert wire.vpc(VPCInfo(IID("v", "x"), "", None))["SubnetInfoList"] == []


def test_key_file_is_private_and_stable(tmp_path):
    key = load_or_create_key(tmp_path / "secret.key")
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600
    os.chmod(tmp_path / "secret.key", 0o644)
    assert load_or_create_key(tmp_path / "secret.key") == key
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600


def test_cipher_round_trip_and_tamper(tmp_path):
    cipher = CredentialCipher.for_root(tmp_path)
    token = cipher.encrypt("s3cret")
    assert "s3cret" not in token and cipher.decrypt(token) == "s3cret"
    assert cipher.encrypt("s3cret") != token  # fresh nonce every time
    other = CredentialCipher(os.urandom(32))
    with pytest.raises(SpiderError, match="cannot be decrypted"):
        other.decrypt(token)


async def test_metadb_insert_is_all_or_nothing(tmp_path):
    db = MetaDB(tmp_path)
    await db.open()
    try:
        await db.insert_iids([IIDRow("c", "vpc", "v1", "u1:x1")])
        before = await db.dump()
        with pytest.raises(DuplicateRow):
            await db.insert_iids([IIDRow("c", "vpc", "v2", "u2:x2"), IIDRow("c", "vpc", "v1", "u3:x3")])
        assert await db.dump() == before  # v2 was not left behind
        assert await db.get_iid("c", "vpc", "v2") is None
        row = await db.find_iid_by_csp_id("c", "vpc", "x1")
        assert row is not None and row.name == "v1"
        assert await db.find_iid_by_csp_id("c", "vpc", "x%") is None  # LIKE wildcards are escaped
    finally:
        await db.close()


async def test_metadb_credentials_encrypted_on_disk(tmp_path):
    db = MetaDB(tmp_path)
    await db.open()
    try:
        sealed = await db.put_credential(CredentialInfo("cred", "MOCK", [KeyValue("MockName", "plain-value-123")]))
        assert sealed.key_values[0].value != "plain-value-123"
        back = await db.get_credential("cred", decrypt=True)
        assert back.key_values[0].value == "plain-value-123"
    finally:
        await db.close()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "meta_db").iterdir())
    assert b"plain-value-123" not in raw


async def test_metadb_close_leaves_a_self_contained_file(tmp_path):
    db = MetaDB(tmp_path)
    await db.open()
    await db.insert_iids([IIDRow("c", "vpc", f"v{i}", f"u{i}:x{i}") for i in range(50)])
    await db.close()
    wal = tmp_path / "meta_db" / "spider.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    import sqlite3
    copy = tmp_path / "copy.db"
    copy.write_bytes((tmp_path / "meta_db" / "spider.db").read_bytes())
    assert sqlite3.connect(copy).execute("SELECT COUNT(*) FROM iid_infos").fetchone()[0] == 50
