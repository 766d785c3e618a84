"""``/v3/credentials`` (and the EC2 credentials under ``/v3/users/{id}/credentials/OS-EC2``): blobs
kept encrypted at rest, shown only to their owner and to admins."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.identity.store import Credential, new_id
from cloudtwin.routing import Call
from cloudtwin.services.keystone import common
from cloudtwin.services.keystone.users import user_of


def _doc(call: Call, c: Credential) -> dict[str, Any]:
    return {**c.extra, "id": c.id, "user_id": c.user_id, "project_id": c.project_id, "type": c.type,
            "blob": common.store(call).unseal(c.blob_sealed), "links": common.link(call, f"credentials/{c.id}")}


def _visible(call: Call, c: Credential) -> bool:
    tok = call.token
    assert tok is not None
    return tok.is_admin or c.user_id == tok.user_id


def _credential(call: Call) -> Credential:
    found = common.store(call).credentials.get(call.params["id"])
    if found is None or not _visible(call, found):
        raise ApiError(404, f"Could not find credential: {call.params['id']}.")
    return found


def _fields(call: Call, doc: dict[str, Any], *, create: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if create or "type" in doc:
        out["type"] = common.text(doc, "type", required=True)
    if create or "blob" in doc:
        blob = common.text(doc, "blob", required=True, limit=65536) or ""
        out["blob"] = blob
    if create or "user_id" in doc:
        out["user_id"] = user_of(call, common.text(doc, "user_id", required=True)).id
    if "project_id" in doc and doc["project_id"] is not None:
        out["project_id"] = common.project_of(call, str(doc["project_id"])).id
    if out.get("type", "") == "ec2":
        if create and "project_id" not in out:
            raise ApiError(400, "Invalid blob in credential: a project_id is required for ec2 credentials.")
        try:
            access = json.loads(out["blob"])["access"] if "blob" in out else None
        except (ValueError, KeyError, TypeError):
            raise ApiError(400, "Invalid blob in credential: an ec2 blob is JSON with 'access'.") from None
        if access is not None:
            out["id"] = hashlib.sha256(str(access).encode()).hexdigest()
    return out


async def list_credentials(call: Call) -> web.Response:
    items = [c for c in common.store(call).credentials.values() if _visible(call, c)]
    for key in ("user_id", "type"):
        if key in call.query:
            items = [c for c in items if getattr(c, key) == call.query[key]]
    return common.collection(call, "credentials", [_doc(call, c) for c in items])


async def create_credential(call: Call) -> web.Response:
    fields = _fields(call, common.body(call, "credential"), create=True)
    tok = call.token
    assert tok is not None
    if fields["user_id"] != tok.user_id and not tok.is_admin:
        raise ApiError(403, "You are not authorized to perform the requested action: identity:create_credential.")
    st = common.store(call)
    cid = fields.pop("id", None) or new_id()
    if cid in st.credentials:
        raise ApiError(409, f"Conflict occurred attempting to store credential - Duplicate ID, {cid}.")
    c = Credential(cid, fields["user_id"], fields["type"], st.seal(fields["blob"]), fields.get("project_id"))
    st.credentials[c.id] = c
    return wire.json_response(201, {"credential": _doc(call, c)})


async def get_credential(call: Call) -> web.Response:
    return wire.json_response(200, {"credential": _doc(call, _credential(call))})


async def update_credential(call: Call) -> web.Response:
    c = _credential(call)
    fields = _fields(call, common.body(call, "credential"), create=False)
    fields.pop("id", None)
    if "blob" in fields:
        c.blob_sealed = common.store(call).seal(fields.pop("blob"))
    for k, v in fields.items():
        setattr(c, k, v)
    return wire.json_response(200, {"credential": _doc(call, c)})


async def delete_credential(call: Call) -> web.Response:
    c = _credential(call)
    del common.store(call).credentials[c.id]
    return wire.json_response(204)


# ---- EC2 credentials
def _ec2_doc(call: Call, c: Credential) -> dict[str, Any]:
    blob = json.loads(common.store(call).unseal(c.blob_sealed))
    return {"user_id": c.user_id, "tenant_id": c.project_id, "access": blob["access"], "secret": blob["secret"],
            "trust_id": blob.get("trust_id"),
            "links": common.link(call, f"users/{c.user_id}/credentials/OS-EC2/{blob['access']}")}


def _ec2(call: Call) -> list[Credential]:
    user = user_of(call)
    return [c for c in common.store(call).credentials.values() if c.user_id == user.id and c.type == "ec2"]


async def create_ec2(call: Call) -> web.Response:
    user = user_of(call)
    doc = call.body()
    pid = doc.get("tenant_id") if isinstance(doc, dict) else None
    if not isinstance(pid, str):
        raise ApiError(400, "Invalid input: 'tenant_id' is required.")
    project = common.project_of(call, pid)
    access, secret = secrets.token_hex(16), secrets.token_hex(16)
    st = common.store(call)
    c = Credential(hashlib.sha256(access.encode()).hexdigest(), user.id, "ec2",
                   st.seal(json.dumps({"access": access, "secret": secret, "trust_id": None})), project.id)
    st.credentials[c.id] = c
    return wire.json_response(201, {"credential": _ec2_doc(call, c)})


async def list_ec2(call: Call) -> web.Response:
    return common.collection(call, "credentials", [_ec2_doc(call, c) for c in _ec2(call)],
                             f"users/{call.params['uid']}/credentials/OS-EC2")


def _one_ec2(call: Call) -> Credential:
    found = next((c for c in _ec2(call) if _ec2_doc(call, c)["access"] == call.params["access"]), None)
    if found is None:
        raise ApiError(404, "Could not find credential: " + call.params["access"] + ".")
    return found


async def get_ec2(call: Call) -> web.Response:
    return wire.json_response(200, {"credential": _ec2_doc(call, _one_ec2(call))})


async def delete_ec2(call: Call) -> web.Response:
    del common.store(call).credentials[_one_ec2(call).id]
    return wire.json_response(204)
