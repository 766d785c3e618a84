"""Role enforcement: OpenStack's policy defaults from data/policy.yaml, a 403 in each service's own
envelope, admins see every project, readers cannot write, and the check language itself."""

from __future__ import annotations

from types import SimpleNamespace

import aiohttp
import pytest

from twin_helpers import keystone_login, keystone_user

from cloudtwin import policy

C = "/cloud-1/RegionOne"


def _tok(roles: tuple[str, ...], user: str = "u1", project: str = "p1", scope: str = "project") -> object:
    return SimpleNamespace(role_names=frozenset(roles), user_id=user, scope=scope, domain_id=None,
                           project=SimpleNamespace(id=project, domain_id="default"))


def test_the_check_language_and_the_shipped_file() -> None:
    rules = policy.load()
    check = policy.parse("rule:admin or (role:member and not role:banned) or user_id:%(uid)s")
    assert check(_tok(("admin",)), {}, rules)
    assert check(_tok(("member",)), {}, rules)
    assert not check(_tok(("member", "banned")), {}, rules)
    assert check(_tok(("reader",), user="me"), {"uid": "me"}, rules)
    assert not check(_tok(("reader",), user="me"), {"uid": "you"}, rules)
    assert policy.parse("")(_tok(()), {}, rules) and not policy.parse("!")(_tok(("admin",)), {}, rules)
    for bad in ("role:a and", "(role:a", "nokind", "zone:x"):
        with pytest.raises(policy.PolicyError):
            policy.parse(bad)
    # first matching pattern wins; unnamed operations fall back to the service's read/write default
    assert rules.lookup("compute:hypervisor:list", True)[0] == "rule:admin"
    assert rules.lookup("compute:server:action:migrate", False)[0] == "rule:admin"
    assert rules.lookup("compute:server:action:reboot", False)[0] == "compute write default"
    assert rules.lookup("network:network:get", True)[0] == "network read default"


def test_a_policy_file_naming_an_unknown_rule_is_refused(tmp_path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("rules: {a: 'rule:nope'}\nservices: {}\noperations: []\n")
    with pytest.raises(policy.PolicyError, match="nope"):
        policy.load(bad)
    bad.write_text("rules: {}\nservices: {compute: {read: '@'}}\n")
    with pytest.raises(policy.PolicyError, match="read and write"):
        policy.load(bad)


async def test_readers_read_members_write_and_admin_apis_need_admin(twin) -> None:
    async with aiohttp.ClientSession() as s:
        member, mdoc = await keystone_user(s, twin.url, project="p1", role="member")
        reader, _ = await keystone_user(s, twin.url, project="p1", role="reader")
        admin, _ = await keystone_login(s, twin.url, project="admin")
        assert {r["name"] for r in mdoc["roles"]} == {"member", "reader"}, "implied roles travel in the token"

        async def call(token: str, method: str, path: str, body: object = None) -> tuple[int, object]:
            async with s.request(method, twin.url + path, json=body, headers={"X-Auth-Token": token}) as r:
                return r.status, (await r.json() if r.content_type == "application/json" else await r.text())

        net = {"network": {"name": "n1"}}
        code, doc = await call(reader, "POST", C + "/network/v2.0/networks", net)
        assert code == 403 and doc["NeutronError"]["type"] == "PolicyNotAuthorized"
        assert "network:network:create" in doc["NeutronError"]["message"]
        code, _ = await call(member, "POST", C + "/network/v2.0/networks", net)
        assert code == 201
        code, doc = await call(reader, "GET", C + "/network/v2.0/networks")
        assert code == 200 and [n["name"] for n in doc["networks"] if n["name"] == "n1"] == ["n1"]
        # Nova: flavors are listed by anyone, made only by an admin; the 403 is Nova's envelope
        code, _ = await call(reader, "GET", C + "/compute/v2.1/flavors")
        assert code == 200
        code, doc = await call(member, "POST", C + "/compute/v2.1/servers/x/action", {"migrate": None})
        assert code == 403 and doc == {"forbidden": {"code": 403, "message":
                                                     "Policy doesn't allow compute:server:action:migrate to be "
                                                     "performed."}}
        code, doc = await call(reader, "POST", C + "/compute/v2.1/os-keypairs", {"keypair": {"name": "k"}})
        assert code in (200, 201), "keypairs belong to the user, whatever the role"
        # Glance's 403 is text; Keystone's has a title
        code, text = await call(reader, "POST", C + "/image/v2/images", {"name": "x"})
        assert code == 403 and "image:image:create" in text
        code, doc = await call(member, "GET", "/v3/users")
        assert code == 403 and doc["error"]["title"] == "Forbidden"
        code, _ = await call(admin, "GET", "/v3/users")
        assert code == 200
        # a user reads itself and its own projects, not another user
        uid = mdoc["user"]["id"]
        assert (await call(member, "GET", f"/v3/users/{uid}"))[0] == 200
        assert (await call(member, "GET", f"/v3/users/{uid}/projects"))[0] == 200
        other = (await call(admin, "GET", "/v3/users?name=admin"))[1]["users"][0]["id"]
        assert (await call(member, "GET", f"/v3/users/{other}"))[0] == 403


async def test_a_removed_role_takes_effect_and_admin_lists_every_project(twin) -> None:
    async with aiohttp.ClientSession() as s:
        member, mdoc = await keystone_user(s, twin.url, project="p1", role="member")
        admin, _ = await keystone_login(s, twin.url, project="admin")
        h = {"X-Auth-Token": admin}
        uid, pid = mdoc["user"]["id"], mdoc["project"]["id"]
        async with s.get(f"{twin.url}/v3/roles?name=member", headers=h) as r:
            rid = (await r.json())["roles"][0]["id"]
        async with s.delete(f"{twin.url}/v3/projects/{pid}/users/{uid}/roles/{rid}", headers=h) as r:
            assert r.status == 204
        async with s.get(twin.url + C + "/network/v2.0/networks", headers={"X-Auth-Token": member}) as r:
            assert r.status == 401, "a token whose role was taken away no longer works"


def test_project_scope_for_listings() -> None:
    def call(roles: tuple[str, ...], **query: str) -> object:
        return SimpleNamespace(token=SimpleNamespace(is_admin="admin" in roles, project=SimpleNamespace(id="own")),
                               query=query)
    assert policy.project_scope(call(("member",), all_tenants="1")) == {"own"}
    assert policy.project_scope(call(("member",), project_id="other")) == {"own"}
    assert policy.project_scope(call(("admin",))) == {"own"}
    assert policy.project_scope(call(("admin",), all_tenants="True")) is None
    assert policy.project_scope(call(("admin",), all_tenants="0")) == {"own"}
    assert policy.project_scope(call(("admin",), all_tenants="1", project_id="p9")) == {"p9"}
    assert policy.project_scope(call(("admin",)), admin_sees_all=True) is None
