"""Write Tempest's configuration for a running twin.

The template (``tempest.conf.in``) holds what DevStack sets by hand; the rest is read from the twin
through its own APIs, as DevStack's ``lib/tempest`` reads it from a deployed cloud: the image and
flavors to boot, the public network, the microversion ranges, the extension lists and the number of
compute hosts.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).with_name("tempest.conf.in")


@dataclass(frozen=True)
class Admin:
    """The cloud admin Tempest's dynamic credentials act as (the profile's documented login)."""

    user: str = "admin"
    password: str = "admin"
    project: str = "admin"
    region: str = "RegionOne"


class DiscoveryError(RuntimeError):
    """The twin did not answer a question Tempest's configuration needs."""


def _http(method: str, url: str, token: str | None = None, body: Any = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            status, hdrs = resp.status, dict(resp.headers)
    except urllib.error.HTTPError as err:
        raw, status, hdrs = err.read(), err.code, dict(err.headers)
    try:
        doc = json.loads(raw) if raw else None
    except ValueError:
        doc = None
    return status, hdrs, doc


class TwinProbe:
    """A logged-in admin session on the twin and the questions the configuration asks it."""

    def __init__(self, base_url: str, admin: Admin) -> None:
        self.base_url = base_url.rstrip("/")
        self.admin = admin
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": admin.user, "password": admin.password, "domain": {"name": "Default"}}}},
            "scope": {"project": {"name": admin.project, "domain": {"name": "Default"}}}}}
        status, headers, doc = _http("POST", f"{self.base_url}/v3/auth/tokens", body=body)
        if status != 201 or not doc:
            raise DiscoveryError(f"admin login to {self.base_url}/v3 failed: {status} {doc}")
        self.token = headers.get("X-Subject-Token", "")
        self.catalog = doc["token"]["catalog"]

    def endpoint(self, stype: str) -> str:
        for svc in self.catalog:
            if svc["type"] != stype:
                continue
            for ep in svc["endpoints"]:
                if ep["interface"] == "public" and ep["region_id"] == self.admin.region:
                    return str(ep["url"]).rstrip("/")
        raise DiscoveryError(f"the catalog has no public {stype} endpoint in {self.admin.region}")

    def get(self, url: str, **headers: str) -> Any:
        status, _, doc = _http("GET", url, self.token, headers=headers)
        if status >= 400:
            raise DiscoveryError(f"GET {url}: {status} {doc}")
        return doc

    def get_or_none(self, url: str) -> Any:
        try:
            return self.get(url)
        except DiscoveryError:
            return None

    # ---- the answers
    def compute_versions(self) -> tuple[str, str]:
        doc = self.get(self.endpoint("compute"))["version"]
        return doc.get("min_version") or "2.1", doc.get("version") or "2.1"

    def volume_versions(self) -> tuple[str, str]:
        root = self.endpoint("block-storage").split("/v3")[0]
        status, _, doc = _http("GET", root + "/", self.token)
        versions = (doc or {}).get("versions") or []
        for v in versions:
            if str(v.get("id", "")).startswith("v3"):
                return v.get("min_version") or "3.0", v.get("version") or "3.0"
        raise DiscoveryError(f"GET {root}/: no v3 in the version list ({status})")

    def images(self) -> tuple[str, str]:
        images = self.get(self.endpoint("image") + "/v2/images?limit=1000")["images"]
        if not images:
            raise DiscoveryError("the twin lists no image to boot")
        cirros = [i for i in images if "cirros" in i["name"]]
        first = (cirros or images)[0]["id"]
        return first, first

    def flavors(self) -> tuple[str, str]:
        flavors = self.get(self.endpoint("compute") + "/flavors/detail")["flavors"]
        flavors.sort(key=lambda f: (f["ram"], f["disk"], f["vcpus"]))
        if not flavors:
            raise DiscoveryError("the twin lists no flavor")
        return flavors[0]["id"], flavors[min(1, len(flavors) - 1)]["id"]

    def public_network(self) -> tuple[str, str]:
        nets = self.get(self.endpoint("network") + "/v2.0/networks?router:external=True")["networks"]
        if not nets:
            raise DiscoveryError("the twin has no external network")
        return nets[0]["id"], nets[0]["name"]

    def extensions(self, url: str) -> str:
        """The aliases a service lists at ``url`` (as DevStack's ``openstack extension list``), or
        Tempest's ``all`` when the service has no extension list."""
        doc = self.get_or_none(url)
        aliases = sorted({e["alias"] for e in (doc or {}).get("extensions", []) if e.get("alias")})
        return ",".join(aliases) if aliases else "all"

    def compute_nodes(self) -> int:
        doc = self.get_or_none(self.endpoint("compute") + "/os-hypervisors")
        return max(1, len((doc or {}).get("hypervisors", [])))


def values(probe: TwinProbe, workspace: Path) -> dict[str, Any]:
    """Every placeholder of the template, read from the twin."""
    image, image_alt = probe.images()
    flavor, flavor_alt = probe.flavors()
    cmin, cmax = probe.compute_versions()
    vmin, vmax = probe.volume_versions()
    net_id, net_name = probe.public_network()
    nodes = probe.compute_nodes()
    return {
        "workspace": workspace, "admin_user": probe.admin.user, "admin_password": probe.admin.password,
        "admin_project": probe.admin.project, "region": probe.admin.region,
        "identity_url": f"{probe.base_url}/v3", "identity_extensions": "all",
        "image_ref": image, "image_ref_alt": image_alt, "flavor_ref": flavor, "flavor_ref_alt": flavor_alt,
        "compute_min_microversion": cmin, "compute_max_microversion": cmax,
        "compute_nodes": nodes, "multi_node": nodes > 1,
        "public_network_id": net_id, "public_network_name": net_name,
        "network_extensions": probe.extensions(probe.endpoint("network") + "/v2.0/extensions"),
        "volume_min_microversion": vmin, "volume_max_microversion": vmax,
        "volume_extensions": probe.extensions(probe.endpoint("block-storage") + "/extensions"),
    }


def render(fields: dict[str, Any]) -> str:
    return TEMPLATE.read_text().format(**fields)


def write(base_url: str, workspace: Path, admin: Admin | None = None) -> Path:
    """Write ``<workspace>/etc/tempest.conf`` for the twin at ``base_url``; returns its path."""
    probe = TwinProbe(base_url, admin or Admin())
    path = workspace / "etc" / "tempest.conf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(values(probe, workspace)))
    return path
