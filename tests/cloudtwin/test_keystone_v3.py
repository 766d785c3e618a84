"""Keystone v3's admin API on Cloud-Twin: projects, users, groups, roles and assignments, application
credentials; Fernet tokens any process holding the key repository validates; revocation; bad input."""

from __future__ import annotations

import os
import stat
from typing import Any

import aiohttp
import pytest

from twin_helpers import keystone_login

from cloudtwin.app import TwinServer
from cloudtwin.clouds import TwinConfig
from cloudtwin.identity.fernet import KeyRepository, KeyRepositoryError


class Keystone:
    def __init__(self, s: aiohttp.ClientSession, url: str, token: str) -> None:
        self.s, self.url, self.token = s, url, token

    async def __call__(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        async with self.s.request(method, self.url + "/v3" + path, json=body,
                                  headers={"X-Auth-Token": token or self.token}) as r:
            return r.status, (await r.json() if r.content_type == "application/json" else None)

    async def login(self, user: str, password: str, scope: Any, domain: str = "cloud-1") -> tuple[int, Any, str]:
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "password": password, "domain": {"name": domain}}}}, "scope": scope}}
        async with self.s.post(self.url + "/v3/auth/tokens", json=body) as r:
            return r.status, await r.json(), r.headers.get("X-Subject-Token", "")


@pytest.fixture
async def ks(twin) -> Any:
    async with aiohttp.ClientSession() as s:
        token, _ = await keystone_login(s, twin.url, project="admin")
        yield Keystone(s, twin.url, token)


async def test_projects_users_and_roles_make_a_working_member(ks, twin) -> None:
    code, doc = await ks("POST", "/projects", {"project": {"name": "web", "description": "tier",
                                                           "tags": ["a"]}})
    assert code == 201 and doc["project"]["tags"] == ["a"] and doc["project"]["enabled"] is True
    pid = doc["project"]["id"]
    assert (await ks("POST", "/projects", {"project": {"name": "web"}}))[0] == 409
    assert (await ks("POST", "/projects", {"project": {"name": "x" * 65}}))[0] == 400
    assert (await ks("POST", "/projects", {"project": {"name": 7}}))[0] == 400
    assert (await ks("POST", "/projects", {"nope": {}}))[0] == 400
    code, doc = await ks("POST", "/users", {"user": {"name": "ann", "password": "pw1", "email": "a@x"}})
    assert code == 201 and doc["user"]["email"] == "a@x" and "password" not in doc["user"]
    uid = doc["user"]["id"]
    # no role on the project yet: no token for it
    code, _, _ = await ks.login("ann", "pw1", {"project": {"id": pid}})
    assert code == 401
    code, doc = await ks("GET", "/roles?name=member")
    member = doc["roles"][0]["id"]
    assert (await ks("PUT", f"/projects/{pid}/users/{uid}/roles/{member}"))[0] == 204
    assert (await ks("GET", f"/projects/{pid}/users/{uid}/roles/{member}"))[0] == 204
    code, body, token = await ks.login("ann", "pw1", {"project": {"id": pid}})
    assert code == 201 and {r["name"] for r in body["token"]["roles"]} == {"member", "reader"}
    code, doc = await ks("GET", f"/users/{uid}/projects", token=token)
    assert code == 200 and [p["name"] for p in doc["projects"]] == ["web"]
    code, doc = await ks("GET", f"/role_assignments?user.id={uid}&include_names")
    (a,) = doc["role_assignments"]
    assert a["role"]["name"] == "member" and a["scope"]["project"]["name"] == "web"
    # a wrong password, a disabled user
    assert (await ks.login("ann", "nope", {"project": {"id": pid}}))[0] == 401
    assert (await ks("PATCH", f"/users/{uid}", {"user": {"enabled": False}}))[0] == 200
    assert (await ks("GET", "/auth/tokens", token=token))[0] == 401, "a disabled user's tokens die"
    assert (await ks.login("ann", "pw1", {"project": {"id": pid}}))[0] == 401


async def test_groups_grant_roles_and_changes_reach_live_tokens(ks) -> None:
    pid = (await ks("POST", "/projects", {"project": {"name": "ops"}}))[1]["project"]["id"]
    uid = (await ks("POST", "/users", {"user": {"name": "bob", "password": "pw"}}))[1]["user"]["id"]
    gid = (await ks("POST", "/groups", {"group": {"name": "ops-team"}}))[1]["group"]["id"]
    reader = (await ks("GET", "/roles?name=reader"))[1]["roles"][0]["id"]
    member = (await ks("GET", "/roles?name=member"))[1]["roles"][0]["id"]
    assert (await ks("PUT", f"/groups/{gid}/users/{uid}"))[0] == 204
    assert (await ks("PUT", f"/projects/{pid}/groups/{gid}/roles/{reader}"))[0] == 204
    code, body, token = await ks.login("bob", "pw", {"project": {"name": "ops", "domain": {"name": "cloud-1"}}})
    assert code == 201 and [r["name"] for r in body["token"]["roles"]] == ["reader"]
    code, doc = await ks("GET", f"/role_assignments?effective&user.id={uid}")
    assert [(a["role"]["id"], a["links"]["membership"].endswith(f"/groups/{gid}/users/{uid}"))
            for a in doc["role_assignments"]] == [(reader, True)]
    # a role granted now shows in the token already held; a membership removed takes the group's away
    assert (await ks("PUT", f"/projects/{pid}/users/{uid}/roles/{member}"))[0] == 204
    code, doc = await ks("GET", "/auth/tokens", token=token)
    h = {"X-Auth-Token": ks.token, "X-Subject-Token": token}
    async with ks.s.get(ks.url + "/v3/auth/tokens", headers=h) as r:
        roles = {x["name"] for x in (await r.json())["token"]["roles"]}
    assert roles == {"member", "reader"}
    assert (await ks("DELETE", f"/projects/{pid}/users/{uid}/roles/{member}"))[0] == 204
    assert (await ks("DELETE", f"/groups/{gid}/users/{uid}"))[0] == 204
    async with ks.s.get(ks.url + "/v3/auth/tokens", headers=h) as r:
        assert r.status == 404, "no role left on the project: the token is void"


async def test_application_credentials_log_in_with_their_roles(ks) -> None:
    pid = (await ks("POST", "/projects", {"project": {"name": "ci"}}))[1]["project"]["id"]
    uid = (await ks("POST", "/users", {"user": {"name": "cid", "password": "pw"}}))[1]["user"]["id"]
    member = (await ks("GET", "/roles?name=member"))[1]["roles"][0]["id"]
    await ks("PUT", f"/projects/{pid}/users/{uid}/roles/{member}")
    _, _, token = await ks.login("cid", "pw", {"project": {"id": pid}})
    body = {"application_credential": {"name": "deploy", "roles": [{"name": "member"}],
                                       "access_rules": [{"service": "compute", "path": "/servers", "method": "GET"}]}}
    code, doc = await ks("POST", f"/users/{uid}/application_credentials", body, token=token)
    assert code == 201 and doc["application_credential"]["secret"]
    cred = doc["application_credential"]
    code, listed = await ks("GET", f"/users/{uid}/application_credentials", token=token)
    assert [c["name"] for c in listed["application_credentials"]] == ["deploy"]
    assert "secret" not in listed["application_credentials"][0], "the secret is shown once"
    login = {"auth": {"identity": {"methods": ["application_credential"], "application_credential": {
        "id": cred["id"], "secret": cred["secret"]}}}}
    async with ks.s.post(ks.url + "/v3/auth/tokens", json=login) as r:
        assert r.status == 201
        tok = (await r.json())["token"]
    assert tok["project"]["id"] == pid and tok["methods"] == ["application_credential"]
    assert tok["application_credential"]["restricted"] is True
    login["auth"]["identity"]["application_credential"]["secret"] = "wrong"
    async with ks.s.post(ks.url + "/v3/auth/tokens", json=login) as r:
        assert r.status == 401
    rule = cred["access_rules"][0]["id"]
    assert (await ks("DELETE", f"/users/{uid}/access_rules/{rule}", token=token))[0] == 403, "still in use"
    assert (await ks("DELETE", f"/users/{uid}/application_credentials/{cred['id']}", token=token))[0] == 204
    assert (await ks("DELETE", f"/users/{uid}/access_rules/{rule}", token=token))[0] == 204


async def test_domains_hold_their_own_users_and_refuse_deletion_while_enabled(ks) -> None:
    code, doc = await ks("POST", "/domains", {"domain": {"name": "lab-dom"}})
    assert code == 201
    did = doc["domain"]["id"]
    assert (await ks("POST", "/domains", {"domain": {"name": "lab-dom"}}))[0] == 409
    pid = (await ks("POST", "/projects", {"project": {"name": "p", "domain_id": did}}))[1]["project"]["id"]
    uid = (await ks("POST", "/users", {"user": {"name": "u", "password": "pw", "domain_id": did}}))[1]["user"]["id"]
    admin = (await ks("GET", "/roles?name=admin"))[1]["roles"][0]["id"]
    await ks("PUT", f"/projects/{pid}/users/{uid}/roles/{admin}")
    code, body, _ = await ks.login("u", "pw", {"project": {"name": "p", "domain": {"id": did}}}, domain="lab-dom")
    assert code == 201 and body["token"]["user"]["domain"]["name"] == "lab-dom"
    assert (await ks("DELETE", f"/domains/{did}"))[0] == 403
    assert (await ks("PATCH", f"/domains/{did}", {"domain": {"enabled": False}}))[0] == 200
    assert (await ks.login("u", "pw", {"project": {"id": pid}}, domain="lab-dom"))[0] == 401
    assert (await ks("DELETE", f"/domains/{did}"))[0] == 204
    assert (await ks("GET", f"/users/{uid}"))[0] == 404 and (await ks("GET", f"/projects/{pid}"))[0] == 404


async def test_a_key_repository_shared_by_two_twins_validates_either_ones_tokens(tmp_path) -> None:
    repo = tmp_path / "fernet-keys"
    one = await TwinServer(port=0, config=TwinConfig(keystone_key_repo=str(repo))).start()
    two = await TwinServer(port=0, config=TwinConfig(keystone_key_repo=str(repo))).start()
    other = await TwinServer(port=0, config=TwinConfig()).start()
    try:
        assert sorted(os.listdir(repo)) == ["0", "1"]
        assert stat.S_IMODE(os.stat(repo / "1").st_mode) == 0o600
        async with aiohttp.ClientSession() as s:
            token, doc = await keystone_login(s, one.url, project="shared")
            h = {"X-Auth-Token": token}
            async with s.get(f"{two.url}/cloud-1/RegionOne/network/v2.0/networks", headers=h) as r:
                assert r.status == 200, "the other process validates the token with the shared keys"
            assert two.twin.clouds["cloud-1"].projects[doc["project"]["id"]].name == "shared"
            await keystone_login(s, other.url)      # cloud-1 exists there too
            async with s.get(f"{other.url}/cloud-1/RegionOne/network/v2.0/networks", headers=h) as r:
                assert r.status == 401, "a process with other keys does not"
            async with s.get(f"{two.url}/cloud-1/RegionOne/network/v2.0/networks",
                             headers={"X-Auth-Token": token[:-4] + "AAAA"}) as r:
                assert r.status == 401, "a tampered token is refused"
    finally:
        for srv in (one, two, other):
            await srv.stop()
    (repo / "1").write_text("not a key")
    with pytest.raises(KeyRepositoryError):
        KeyRepository(repo)


async def test_revoked_and_rescoped_tokens(ks) -> None:
    code, body, token = await ks.login("admin", "admin", None)
    assert code == 201 and body["token"]["project"]["name"] == "admin", "no scope: the default project"
    rescope = {"auth": {"identity": {"methods": ["token"], "token": {"id": token}},
                        "scope": {"domain": {"name": "cloud-1"}}}}
    async with ks.s.post(ks.url + "/v3/auth/tokens", json=rescope) as r:
        assert r.status == 201
        doc = (await r.json())["token"]
        domain_token = r.headers["X-Subject-Token"]
    assert doc["domain"]["name"] == "cloud-1" and doc["methods"] == ["password", "token"]
    assert doc["audit_ids"][1] == body["token"]["audit_ids"][0], "the chain keeps the first audit id"
    h = {"X-Auth-Token": ks.token, "X-Subject-Token": token}
    async with ks.s.delete(ks.url + "/v3/auth/tokens", headers=h) as r:
        assert r.status == 204
    async with ks.s.get(ks.url + "/v3/auth/tokens", headers=h) as r:
        assert r.status == 404
    assert (await ks("GET", "/auth/projects", token=domain_token))[0] == 200


@pytest.mark.parametrize("path,one,body", [
    ("policies", "policy", {"blob": "{}", "type": "application/json"}),
    ("OS-OAUTH1/consumers", "consumer", {"description": "ci"}),
    ("OS-EP-FILTER/endpoint_groups", "endpoint_group", {"name": "public", "filters": {"interface": "public"}}),
])
async def test_plain_records_are_kept_and_given_back(ks, path, one, body) -> None:
    code, doc = await ks("POST", f"/{path}", {one: body})
    assert code == 201 and all(doc[one][k] == v for k, v in body.items())
    rid = doc[one]["id"]
    code, listed = await ks("GET", f"/{path}")
    assert [x["id"] for x in next(v for k, v in listed.items() if k != "links")] == [rid]
    assert "secret" not in str(listed), "a consumer's secret is shown when made only"
    assert (await ks("PATCH", f"/{path}/{rid}", {one: {"description": "changed"}}))[0] == 200
    assert (await ks("GET", f"/{path}/{rid}"))[1][one]["description"] == "changed"
    assert (await ks("POST", f"/{path}", {one: "nope"}))[0] == 400
    assert (await ks("DELETE", f"/{path}/{rid}"))[0] == 204
    assert (await ks("GET", f"/{path}/{rid}"))[0] == 404


async def test_trusts_delegate_roles_the_trustor_holds(ks) -> None:
    pid = (await ks("POST", "/projects", {"project": {"name": "tp"}}))[1]["project"]["id"]
    member = (await ks("GET", "/roles?name=member"))[1]["roles"][0]["id"]
    ids = {}
    for name in ("trustor", "trustee", "stranger"):
        ids[name] = (await ks("POST", "/users", {"user": {"name": name, "password": "pw"}}))[1]["user"]["id"]
        await ks("PUT", f"/projects/{pid}/users/{ids[name]}/roles/{member}")
    tokens = {n: (await ks.login(n, "pw", {"project": {"id": pid}}))[2] for n in ids}
    body = {"trust": {"trustor_user_id": ids["trustor"], "trustee_user_id": ids["trustee"], "project_id": pid,
                      "roles": [{"name": "member"}], "impersonation": True,
                      "expires_at": "2099-01-01T00:00:00Z"}}
    assert (await ks("POST", "/OS-TRUST/trusts", body, token=tokens["trustee"]))[0] == 403, "only the trustor"
    bad = {"trust": {**body["trust"], "expires_at": "bad.123Z"}}
    assert (await ks("POST", "/OS-TRUST/trusts", bad, token=tokens["trustor"]))[0] == 400
    unheld = {"trust": {**body["trust"], "roles": [{"name": "admin"}]}}
    assert (await ks("POST", "/OS-TRUST/trusts", unheld, token=tokens["trustor"]))[0] == 403
    code, doc = await ks("POST", "/OS-TRUST/trusts", body, token=tokens["trustor"])
    assert code == 201 and doc["trust"]["expires_at"] == "2099-01-01T00:00:00.000000Z"
    tid = doc["trust"]["id"]
    assert [r["name"] for r in doc["trust"]["roles"]] == ["member"]
    assert (await ks("GET", f"/OS-TRUST/trusts/{tid}", token=tokens["trustee"]))[0] == 200
    assert (await ks("GET", f"/OS-TRUST/trusts/{tid}", token=tokens["stranger"]))[0] == 404
    code, doc = await ks("GET", f"/OS-TRUST/trusts?trustor_user_id={ids['trustor']}", token=tokens["trustor"])
    assert [t["id"] for t in doc["trusts"]] == [tid] and "roles" not in doc["trusts"][0]
    assert (await ks("GET", f"/OS-TRUST/trusts/{tid}/roles/{member}", token=tokens["trustor"]))[0] == 200
    # the trustee logs in on the trust: the trustor's member role on the project, as the trustor
    login = {"auth": {"identity": {"methods": ["token"], "token": {"id": tokens["trustee"]}},
                      "scope": {"OS-TRUST:trust": {"id": tid}}}}
    async with ks.s.post(ks.url + "/v3/auth/tokens", json=login) as r:
        assert r.status == 201
        tok = (await r.json())["token"]
    assert tok["user"]["id"] == ids["trustor"] and tok["project"]["id"] == pid
    assert tok["OS-TRUST:trust"]["trustee_user"]["id"] == ids["trustee"]
    assert {x["name"] for x in tok["roles"]} == {"member", "reader"}
    login["auth"]["identity"]["token"]["id"] = tokens["stranger"]
    async with ks.s.post(ks.url + "/v3/auth/tokens", json=login) as r:
        assert r.status == 401, "only the trustee logs in on a trust"
    assert (await ks("DELETE", f"/OS-TRUST/trusts/{tid}", token=tokens["trustee"]))[0] == 403
    assert (await ks("DELETE", f"/OS-TRUST/trusts/{tid}", token=tokens["trustor"]))[0] == 204
    assert (await ks("GET", f"/OS-TRUST/trusts/{tid}", token=tokens["trustor"]))[0] == 404


async def test_domain_configuration_is_kept_per_group_and_option(ks) -> None:
    did = (await ks("POST", "/domains", {"domain": {"name": "ldap-dom"}}))[1]["domain"]["id"]
    cfg = {"identity": {"driver": "ldap"}, "ldap": {"url": "ldap://ldap.example:389/", "user_tree_dn": "ou=U"}}
    assert (await ks("PUT", f"/domains/{did}/config", {"config": cfg}))[0] == 201
    assert (await ks("GET", f"/domains/{did}/config"))[1] == {"config": cfg}
    assert (await ks("GET", f"/domains/{did}/config/ldap/url"))[1] == {"config": {"url": "ldap://ldap.example:389/"}}
    code, doc = await ks("PATCH", f"/domains/{did}/config/identity/driver", {"config": {"driver": "sql"}})
    assert code == 200 and doc["config"]["identity"] == {"driver": "sql"}
    assert (await ks("PUT", f"/domains/{did}/config", {"config": {"nova": {"x": 1}}}))[0] == 403
    assert (await ks("DELETE", f"/domains/{did}/config/identity/driver"))[0] == 204
    assert (await ks("GET", f"/domains/{did}/config/identity/driver"))[0] == 404
    assert (await ks("DELETE", f"/domains/{did}/config"))[0] == 204
    assert (await ks("GET", f"/domains/{did}/config"))[0] == 404
    code, doc = await ks("GET", "/domains/config/default")
    assert code == 200 and {"identity", "ldap"} <= set(doc["config"])
    assert "list_limit" in (await ks("GET", "/domains/config/identity/default"))[1]["config"]["identity"]


def test_revocations_older_than_any_live_token_are_dropped(monkeypatch) -> None:
    from cloudtwin.identity import store as store_mod

    st = store_mod.IdentityStore(store_mod.Domain("d", "d"), token_ttl=100)
    now = [1000.0]
    monkeypatch.setattr(store_mod.time, "time", lambda: now[0])
    st.revoke(user_id="a")
    now[0] = 1050.0
    st.revoke(user_id="b")
    assert st.revoked("a", None, None, [], 999.0) and not st.revoked("a", None, None, [], 1001.0)
    now[0] = 1120.0   # a's revocation is older than the longest token life: no token it could match lives
    st.revoke(user_id="c")
    assert [r.user_id for r in st.revocations] == ["b", "c"]
