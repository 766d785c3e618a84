"""Volume transfers: a project offers a volume (it turns ``awaiting-transfer``), another project accepts
it with the transfer's id and one-time auth key and becomes its owner (snapshots move along unless the
3.55 ``no_snapshots`` flag says otherwise). The key is returned once, at create; only its salted hash
is kept, as Cinder keeps it."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING, Callable

from cloudtwin.errors import ApiError
from cloudtwin.services.cinder.resources import Snapshot, Transfer, Volume

if TYPE_CHECKING:
    from cloudtwin.clouds import RegionState


def _hash(salt: str, key: str) -> str:
    return hashlib.sha256(f"{salt}{key}".encode()).hexdigest()


class TransferMethods:
    """A part of ``CinderState``."""

    region: "RegionState"
    volumes: dict[str, Volume]
    snapshots: dict[str, Snapshot]
    transfers: dict[str, Transfer]
    status: Callable[[Volume], str]
    _enter: Callable[[Volume, str], None]
    _unindex: Callable[[Volume], None]
    _index: Callable[[Volume], None]

    def transfers_of(self, project_id: str | None) -> list[Transfer]:
        items = [t for t in self.transfers.values() if project_id is None or t.project_id == project_id]
        return sorted(items, key=lambda t: (t.created_at, t.id), reverse=True)

    def get_transfer(self, project_id: str | None, transfer_id: str) -> Transfer:
        t = self.transfers.get(transfer_id)
        if t is None or (project_id is not None and t.project_id != project_id):
            raise ApiError(404, f"Transfer {transfer_id} could not be found.")
        return t

    def create_transfer(self, v: Volume, name: str | None, *, no_snapshots: bool = False) -> tuple[Transfer, str]:
        status = self.status(v)
        if status != "available":
            raise ApiError(400, f"Invalid volume: status must be available, currently {status}.")
        if v.encrypted:
            raise ApiError(400, "Invalid volume: encrypted volumes cannot be transferred.")
        key = secrets.token_hex(8)
        salt = secrets.token_hex(4)
        t = Transfer(id=self.region.cloud.new_id(), project_id=v.project_id, name=name or "", volume_id=v.id,
                     salt=salt, crypt_hash=_hash(salt, key), source_project_id=v.project_id,
                     no_snapshots=no_snapshots)
        self.transfers[t.id] = t
        self._enter(v, "awaiting-transfer")
        return t, key

    def delete_transfer(self, t: Transfer) -> None:
        self.transfers.pop(t.id, None)
        t.removed = True
        v = self.volumes.get(t.volume_id)
        if v is not None and self.status(v) == "awaiting-transfer":
            self._enter(v, "available")

    def accept_transfer(self, transfer_id: str, auth_key: str, project_id: str, user_id: str) -> Transfer:
        t = self.transfers.get(transfer_id)
        if t is None:
            raise ApiError(404, f"Transfer {transfer_id} could not be found.")
        if not hmac.compare_digest(_hash(t.salt, auth_key), t.crypt_hash):
            raise ApiError(400, f"Invalid auth key: Attempt to transfer {transfer_id} with invalid auth key.")
        v = self.volumes.get(t.volume_id)
        if v is None or self.status(v) != "awaiting-transfer":
            raise ApiError(400, "Invalid volume: the volume is no longer awaiting transfer.")
        self.quota_guard_transfer(project_id, v)
        self._unindex(v)
        v.project_id, v.user_id = project_id, user_id
        self._index(v)
        if not t.no_snapshots:
            for s in self.snapshots.values():
                if s.volume_id == v.id:
                    s.project_id, s.user_id = project_id, user_id
        self._enter(v, "available")
        v.touch()
        t.accepted, t.destination_project_id = True, project_id
        self.transfers.pop(t.id, None)
        return t

    def quota_guard_transfer(self, project_id: str, v: Volume) -> None:
        self.check_quota(project_id, volumes=1, gigabytes=v.size, size=v.size)  # type: ignore[attr-defined]
