"""Volume type management (create, update, delete, extra specs, access of private types, encryption) and
QoS specs (create, keys, association with types). The profile's types are there from the start; an
admin adds more. A type in use by a volume cannot be deleted, nor a QoS spec still associated unless
forced."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from cloudtwin import wire

from cloudtwin.errors import ApiError
from cloudtwin.services.cinder.resources import QosSpec, Volume, VolumeType

if TYPE_CHECKING:
    from cloudtwin.clouds import RegionState

CONSUMERS = ("front-end", "back-end", "both")
CONTROL_LOCATIONS = ("front-end", "back-end")


def check_specs(specs: Any, what: str = "extra_specs") -> dict[str, str]:
    if not isinstance(specs, dict):
        raise ApiError(400, f"Invalid input received: {what} must be a dictionary.")
    out = {}
    for k, v in specs.items():
        if not isinstance(k, str) or not 0 < len(k) <= 255:
            raise ApiError(400, f"Invalid input received: {what} keys are strings of 1 to 255 characters.")
        if isinstance(v, bool) or not isinstance(v, (str, int, float)) or len(str(v)) > 255:
            raise ApiError(400, f"Invalid input received: the value of {what} key '{k}' must be a string of "
                                "at most 255 characters.")
        out[k] = str(v)
    return out


class TypeMethods:
    """A part of ``CinderState``."""

    region: "RegionState"
    volumes: dict[str, Volume]
    types: dict[str, VolumeType]
    qos_specs: dict[str, QosSpec]

    def visible_types(self, project_id: str, admin: bool, is_public: bool | None) -> list[VolumeType]:
        out = []
        for t in self.types.values():
            if is_public is None and admin:
                out.append(t)
            elif t.is_public and is_public is not False:
                out.append(t)
            elif not t.is_public and is_public is not True and (admin or project_id in t.access):
                out.append(t)
        return sorted(out, key=lambda t: t.name)

    def create_type(self, name: Any, description: Any, is_public: bool, extra_specs: dict[str, str]) -> VolumeType:
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise ApiError(400, "Invalid input received: volume type name must be a string of 1 to 255 characters.")
        if description is not None and (not isinstance(description, str) or len(description) > 255):
            raise ApiError(400, "Invalid input received: description must be a string of at most 255 characters.")
        if any(t.name == name for t in self.types.values()):
            raise ApiError(409, f"Volume Type {name} already exists.")
        vt = VolumeType(id=self.region.cloud.new_id(), name=name, description=description, is_public=is_public,
                        extra_specs=dict(extra_specs))
        self.types[vt.id] = vt
        return vt

    def update_type(self, vt: VolumeType, *, name: Any = None, description: Any = ..., is_public: Any = None) -> None:
        if name is None and description is ... and is_public is None:
            raise ApiError(400, "Specify volume type name, description, is_public or a combination thereof.")
        if name is not None:
            if not isinstance(name, str) or not name.strip() or len(name) > 255:
                raise ApiError(400, "Invalid input received: volume type name must be a string of 1 to 255 "
                                    "characters.")
            if any(t.name == name and t.id != vt.id for t in self.types.values()):
                raise ApiError(409, f"Volume Type {name} already exists.")
            if vt.name == self.region.cloud.profile.default_volume_type and name != vt.name:
                raise ApiError(400, "Invalid input received: the default volume type cannot be renamed.")
            for v in self.volumes.values():
                if v.volume_type == vt.name:
                    v.volume_type = name
            vt.name = name
        if description is not ...:
            if description is not None and (not isinstance(description, str) or len(description) > 255):
                raise ApiError(400, "Invalid input received: description must be a string.")
            vt.description = description
        if is_public is not None:
            vt.is_public = bool(is_public)

    def delete_type(self, vt: VolumeType) -> None:
        if vt.name == self.region.cloud.profile.default_volume_type or vt.name == "__DEFAULT__":
            raise ApiError(400, "Invalid volume type: Default volume type can not be deleted.")
        if any(v.volume_type == vt.name for v in self.volumes.values()):
            raise ApiError(400, f"Target volume type is still in use. Volume Type {vt.id} deletion is not "
                                "allowed with volumes present with the type.")
        del self.types[vt.id]

    def type_in_use(self, vt: VolumeType) -> bool:
        return any(v.volume_type == vt.name for v in self.volumes.values())

    def add_access(self, vt: VolumeType, project_id: str) -> None:
        if vt.is_public:
            raise ApiError(400, "Invalid volume type: Type access modification is not applicable to public "
                                "volume type.")
        if project_id in vt.access:
            raise ApiError(409, f"Volume type access for {vt.id} / {project_id} combination already exists.")
        vt.access.append(project_id)

    def remove_access(self, vt: VolumeType, project_id: str) -> None:
        if vt.is_public:
            raise ApiError(400, "Invalid volume type: Type access modification is not applicable to public "
                                "volume type.")
        if project_id not in vt.access:
            raise ApiError(404, f"Volume type access not found for {vt.id} / {project_id} combination.")
        vt.access.remove(project_id)

    def set_encryption(self, vt: VolumeType, spec: dict[str, Any], *, create: bool) -> dict[str, Any]:
        if create and vt.encryption is not None:
            raise ApiError(400, f"Invalid input received: Volume type encryption for type {vt.id} already exists.")
        if not create and vt.encryption is None:
            raise ApiError(404, f"Volume type encryption for type {vt.id} does not exist.")
        if self.type_in_use(vt):
            raise ApiError(400, f"Invalid input received: Volume type {vt.id} is in use: encryption cannot change.")
        merged = {**(vt.encryption or {}), **spec}
        if create and not isinstance(merged.get("provider"), str):
            raise ApiError(400, "Invalid input received: provider is required.")
        if merged.get("control_location", "front-end") not in CONTROL_LOCATIONS:
            raise ApiError(400, "Invalid input received: control_location must be front-end or back-end.")
        key_size = merged.get("key_size")
        if key_size is not None and (isinstance(key_size, bool) or not isinstance(key_size, int) or key_size < 0):
            raise ApiError(400, "Invalid input received: key_size must be a non-negative integer.")
        now = wire.iso(time.time())
        merged.setdefault("created_at", now)
        merged["updated_at"] = now
        merged.setdefault("control_location", "front-end")
        merged.setdefault("cipher", None)
        merged.setdefault("key_size", None)
        vt.encryption = merged
        return merged

    def delete_encryption(self, vt: VolumeType) -> None:
        if vt.encryption is None:
            raise ApiError(404, f"Volume type encryption for type {vt.id} does not exist.")
        if self.type_in_use(vt):
            raise ApiError(400, f"Invalid input received: Cannot delete encryption specs. Volume type in use.")
        vt.encryption = None

    # ---- QoS specs
    def get_qos(self, qos_id: str) -> QosSpec:
        q = self.qos_specs.get(qos_id)
        if q is None:
            raise ApiError(404, f"QoS Specs {qos_id} could not be found.")
        return q

    def create_qos(self, name: Any, consumer: Any, specs: dict[str, str]) -> QosSpec:
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise ApiError(400, "Invalid input received: QoS specs name must be a string of 1 to 255 characters.")
        if consumer not in CONSUMERS:
            raise ApiError(400, f"Invalid input received: consumer must be one of {', '.join(CONSUMERS)}.")
        if any(q.name == name for q in self.qos_specs.values()):
            raise ApiError(409, f"QoS Specs {name} already exists.")
        q = QosSpec(id=self.region.cloud.new_id(), project_id="", name=name, consumer=consumer, specs=specs)
        self.qos_specs[q.id] = q
        return q

    def qos_associations(self, q: QosSpec) -> list[VolumeType]:
        return [t for t in self.types.values() if t.qos_specs_id == q.id]

    def associate_qos(self, q: QosSpec, vt: VolumeType) -> None:
        if vt.qos_specs_id not in (None, q.id):
            raise ApiError(400, f"Invalid volume type: Type {vt.id} is already associated with another qos specs: "
                                f"{vt.qos_specs_id}")
        vt.qos_specs_id = q.id

    def disassociate_qos(self, q: QosSpec, vt: VolumeType | None = None) -> None:
        for t in ([vt] if vt is not None else self.qos_associations(q)):
            if t.qos_specs_id == q.id:
                t.qos_specs_id = None

    def delete_qos(self, q: QosSpec, *, force: bool) -> None:
        if self.qos_associations(q):
            if not force:
                raise ApiError(400, f"QoS Specs {q.id} is still associated with entities.")
            self.disassociate_qos(q)
        del self.qos_specs[q.id]
