"""Glance metadata definitions (metadefs): namespaces with their properties, objects, tags and resource
type associations. The shipped namespaces come from ``cloudtwin/data/glance_metadefs.yaml`` (owned by the
cloud's admin project, like Glance's ``glance-manage db_load_metadefs``); users add their own."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

from cloudtwin.errors import ApiError
from cloudtwin.services.glance.catalog import metadefs as shipped

NAME_MAX = 80


@dataclass
class Entry:
    """A named thing inside a namespace (property, object or tag) with its document."""
    name: str
    doc: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)


@dataclass
class Namespace:
    namespace: str
    owner: str
    display_name: str = ""
    description: str = ""
    visibility: str = "private"
    protected: bool = False
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    properties: dict[str, Entry] = field(default_factory=dict)
    objects: dict[str, Entry] = field(default_factory=dict)
    tags: dict[str, Entry] = field(default_factory=dict)
    associations: dict[str, Entry] = field(default_factory=dict)

    def visible_to(self, project_id: str, admin: bool) -> bool:
        return admin or self.visibility == "public" or self.owner == project_id


def check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > NAME_MAX:
        raise ApiError(400, f"Invalid {what}: a non-empty string of at most {NAME_MAX} characters")
    return value


class MetadefState:
    """One region's metadefs: the shipped catalogue plus what projects created."""

    def __init__(self, admin_project: str) -> None:
        data = shipped()
        self.resource_types: dict[str, float] = {name: time.time() for name in data["resource_types"]}
        self.namespaces: dict[str, Namespace] = {}
        for doc in data["namespaces"]:
            ns = Namespace(doc["namespace"], admin_project, doc.get("display_name", ""),
                           doc.get("description", ""), doc.get("visibility", "public"),
                           bool(doc.get("protected", True)))
            for name, prop in (doc.get("properties") or {}).items():
                ns.properties[name] = Entry(name, copy.deepcopy(prop))
            for obj in doc.get("objects") or []:
                ns.objects[obj["name"]] = Entry(obj["name"], copy.deepcopy(obj))
            for tag in doc.get("tags") or []:
                ns.tags[tag["name"]] = Entry(tag["name"])
            for assoc in doc.get("resource_type_associations") or []:
                ns.associations[assoc["name"]] = Entry(assoc["name"], copy.deepcopy(assoc))
            self.namespaces[ns.namespace] = ns

    def visible(self, project_id: str, admin: bool) -> list[Namespace]:
        return sorted((n for n in self.namespaces.values() if n.visible_to(project_id, admin)),
                      key=lambda n: n.namespace)

    def get(self, name: str, project_id: str, admin: bool) -> Namespace:
        ns = self.namespaces.get(name)
        if ns is None or not ns.visible_to(project_id, admin):
            raise ApiError(404, f"Metadata definition namespace={name} was not found.")
        return ns

    def writable(self, name: str, project_id: str, admin: bool) -> Namespace:
        ns = self.get(name, project_id, admin)
        if ns.owner != project_id and not admin:
            raise ApiError(403, f"You are not permitted to modify namespace {name}.")
        return ns

    def create(self, doc: dict[str, Any], project_id: str) -> Namespace:
        name = check_name(doc.get("namespace"), "namespace")
        if name in self.namespaces:
            raise ApiError(409, f"Metadata definition namespace={name} already exists.")
        ns = Namespace(name, str(doc.get("owner") or project_id))
        self._fill(ns, doc)
        for rta in doc.get("resource_type_associations") or []:
            self.associate(ns, rta)
        for pname, prop in (doc.get("properties") or {}).items():
            self.put_entry(ns.properties, pname, prop, create=True)
        for obj in doc.get("objects") or []:
            self.put_entry(ns.objects, obj.get("name") if isinstance(obj, dict) else None, obj, create=True)
        for tag in doc.get("tags") or []:
            self.put_entry(ns.tags, tag.get("name") if isinstance(tag, dict) else None, {}, create=True)
        self.namespaces[name] = ns
        return ns

    def _fill(self, ns: Namespace, doc: dict[str, Any]) -> None:
        visibility = doc.get("visibility", ns.visibility)
        if visibility not in ("public", "private"):
            raise ApiError(400, f"Invalid visibility: {visibility}")
        protected = doc.get("protected", ns.protected)
        if not isinstance(protected, bool):
            raise ApiError(400, "Invalid value for 'protected': a boolean")
        for key in ("display_name", "description"):
            if key in doc and not isinstance(doc[key], str):
                raise ApiError(400, f"Invalid value for '{key}': a string")
        ns.visibility, ns.protected = visibility, protected
        ns.display_name = doc.get("display_name", ns.display_name)
        ns.description = doc.get("description", ns.description)
        ns.updated_at = time.time()

    def update(self, ns: Namespace, doc: dict[str, Any]) -> None:
        new_name = doc.get("namespace", ns.namespace)
        check_name(new_name, "namespace")
        if new_name != ns.namespace:
            if new_name in self.namespaces:
                raise ApiError(409, f"Metadata definition namespace={new_name} already exists.")
            del self.namespaces[ns.namespace]
            ns.namespace = new_name
            self.namespaces[new_name] = ns
        self._fill(ns, doc)

    def delete(self, ns: Namespace) -> None:
        if ns.protected:
            raise ApiError(403, f"Namespace {ns.namespace} is protected and cannot be deleted.")
        del self.namespaces[ns.namespace]

    def put_entry(self, table: dict[str, Entry], name: Any, doc: Any, *, create: bool,
                  old: str | None = None) -> Entry:
        name = check_name(name, "name")
        if not isinstance(doc, dict):
            raise ApiError(400, "The definition must be a JSON object.")
        if (create or name != old) and name in table:
            raise ApiError(409, f"A definition named {name} already exists in this namespace.")
        entry = table.pop(old) if old is not None else Entry(name)
        entry.name, entry.doc, entry.updated_at = name, {k: v for k, v in doc.items() if k != "name"}, time.time()
        table[name] = entry
        return entry

    @staticmethod
    def entry(table: dict[str, Entry], name: str, what: str, ns: Namespace) -> Entry:
        if name not in table:
            raise ApiError(404, f"Metadata definition {what}={name} not found in namespace={ns.namespace}.")
        return table[name]

    def associate(self, ns: Namespace, doc: Any) -> Entry:
        if not isinstance(doc, dict):
            raise ApiError(400, "A resource type association is a JSON object.")
        name = check_name(doc.get("name"), "resource type name")
        if name not in self.resource_types:
            self.resource_types[name] = time.time()
        if name in ns.associations:
            raise ApiError(409, f"Resource type {name} is already associated with namespace {ns.namespace}.")
        entry = Entry(name, {k: v for k, v in doc.items() if k in ("prefix", "properties_target")})
        ns.associations[name] = entry
        return entry
