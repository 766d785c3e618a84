"""Glance's catalogues, read once from data files and checked: the site configuration (stores, import
methods, per-image quotas; ``cloudtwin/data/glance.yaml``) and the shipped metadata definitions
(``cloudtwin/data/glance_metadefs.yaml``). A malformed file fails loudly at load, naming the entry."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).resolve().parents[2] / "data"
_STORE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
KNOWN_METHODS = ("glance-direct", "web-download", "copy-image", "glance-download")


class CatalogError(ValueError):
    pass


@dataclass(frozen=True)
class Store:
    id: str
    description: str
    default: bool = False
    read_only: bool = False


@dataclass(frozen=True)
class SiteConfig:
    stores: tuple[Store, ...]
    import_methods: tuple[str, ...]
    download_properties: tuple[str, ...]
    member_quota: int
    property_quota: int
    tag_quota: int

    @property
    def default_store(self) -> str:
        return next(s.id for s in self.stores if s.default)

    def store(self, store_id: str) -> Store | None:
        return next((s for s in self.stores if s.id == store_id), None)


def _need(cond: bool, source: str, where: str, text: str) -> None:
    if not cond:
        raise CatalogError(f"{source}: {where}: {text}")


def parse_site(doc: Any, source: str) -> SiteConfig:
    _need(isinstance(doc, dict), source, "top level", "a mapping")
    stores = []
    for i, s in enumerate(doc.get("stores") or []):
        _need(isinstance(s, dict) and isinstance(s.get("id"), str) and bool(_STORE_ID.match(s["id"])),
              source, f"stores[{i}]", "needs an 'id' of letters, digits, '_', '.', '-'")
        stores.append(Store(s["id"], str(s.get("description", "")), bool(s.get("default", False)),
                            bool(s.get("read_only", False))))
    _need(sum(s.default for s in stores) == 1, source, "stores", "exactly one store is the default")
    methods = doc.get("import_methods") or []
    _need(isinstance(methods, list) and all(m in KNOWN_METHODS for m in methods), source, "import_methods",
          f"a list of {', '.join(KNOWN_METHODS)}")
    props = doc.get("glance_download_properties") or []
    _need(isinstance(props, list) and all(isinstance(p, str) for p in props), source,
          "glance_download_properties", "a list of patterns")
    quotas = doc.get("quotas") or {}
    _need(isinstance(quotas, dict) and all(isinstance(v, int) and v >= 0 for v in quotas.values()), source,
          "quotas", "a mapping of non-negative integers")
    return SiteConfig(tuple(stores), tuple(methods), tuple(props), quotas.get("image_member_quota", 128),
                      quotas.get("image_property_quota", 128), quotas.get("image_tag_quota", 128))


@lru_cache(maxsize=None)
def site() -> SiteConfig:
    path = DATA / "glance.yaml"
    return parse_site(yaml.safe_load(path.read_text()), str(path))


def parse_metadefs(doc: Any, source: str) -> dict[str, Any]:
    """``{"resource_types": [names], "namespaces": [namespace documents]}``, checked."""
    _need(isinstance(doc, dict), source, "top level", "a mapping")
    rtypes = doc.get("resource_types") or []
    _need(isinstance(rtypes, list) and all(isinstance(r, str) for r in rtypes), source, "resource_types",
          "a list of names")
    namespaces = doc.get("namespaces") or []
    _need(isinstance(namespaces, list), source, "namespaces", "a list")
    for i, ns in enumerate(namespaces):
        where = f"namespaces[{i}]"
        _need(isinstance(ns, dict) and isinstance(ns.get("namespace"), str), source, where, "needs 'namespace'")
        for key in ("properties", "objects"):
            _need(isinstance(ns.get(key, {}) if key == "properties" else ns.get(key, []),
                             dict if key == "properties" else list), source, f"{where}.{key}",
                  "a mapping" if key == "properties" else "a list")
        for j, assoc in enumerate(ns.get("resource_type_associations") or []):
            _need(isinstance(assoc, dict) and assoc.get("name") in rtypes, source,
                  f"{where}.resource_type_associations[{j}]", "names one of resource_types")
        for j, tag in enumerate(ns.get("tags") or []):
            _need(isinstance(tag, dict) and isinstance(tag.get("name"), str), source, f"{where}.tags[{j}]",
                  "needs 'name'")
    return {"resource_types": list(rtypes), "namespaces": namespaces}


@lru_cache(maxsize=None)
def metadefs() -> dict[str, Any]:
    path = DATA / "glance_metadefs.yaml"
    return parse_metadefs(yaml.safe_load(path.read_text()), str(path))
