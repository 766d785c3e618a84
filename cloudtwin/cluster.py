"""Cloud-Twin shards: the cluster file that says which twin process holds which clouds.

Each cloud lives whole in one twin process (a *shard*): its state, stages, faults and data plane. The
cluster file is data that every shard (and every tool) reads, so all of them agree on the map::

    # cloudtwin-cluster.yaml
    shards:                        # name -> where it listens, and how others reach it
      a: {address: 127.0.0.1:8201}
      b: {address: 0.0.0.0:8202, url: http://10.0.0.2:8202}
    clouds:                        # first matching rule wins; globs as in fnmatch
      - {match: cloud-1, shard: a, profile: openstack}
      - {match: "busy-*", shard: b, profile: busy-csp}
      - {match: "load-*", spread: [a, b]}      # a stable hash of the name picks one of these
      - {match: "*", shard: b}
    timeouts: {connect: 2, request: 300}       # seconds, for requests a shard forwards to another
    keystone_key_repo: keys/                   # the Fernet keys every shard shares (relative: to this file)

Schema (every field is checked at load, and an error names the file and the field):

* ``shards``: a mapping of 1..256 names (letters, digits, ``-``, ``_``) to ``{address, url?}``;
  ``address`` is ``host:port`` (the shard listens there), ``url`` defaults to ``http://<address>``
  and is what the Keystone catalog hands out and what other shards forward to.
* ``clouds``: a non-empty list of ``{match, shard | spread, profile?}``; ``profile`` picks the profile
  of a cloud created on first login (the owning shard applies it).
* ``timeouts``: optional ``connect`` (default 2) and ``request`` (default 300) seconds.
* ``keystone_key_repo``: optional; the Fernet key repository (Keystone's layout) of every shard, so a
  token issued by one is read by all. A shard started with ``--keystone-key-repo`` uses that instead;
  one of the two is required. On several hosts, copy the directory to each (as Keystone's own nodes
  share theirs).

A cloud that no rule matches belongs to no shard: logins and calls for it get a clear 404.
"""

from __future__ import annotations

import fnmatch
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cloudtwin.clouds import CloudRule

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
MAX_SHARDS = 256


class ClusterError(ValueError):
    """The cluster file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Shard:
    name: str
    host: str
    port: int
    url: str            # base URL others reach it at (catalog endpoints, forwarding)

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Placement:
    """One ``clouds`` rule: clouds named like ``match`` live on ``shards`` (one, or spread by hash)."""

    match: str
    shards: tuple[str, ...]
    profile: str | None = None

    def pick(self, cloud: str) -> str:
        if len(self.shards) == 1:
            return self.shards[0]
        return self.shards[zlib.crc32(cloud.encode()) % len(self.shards)]


@dataclass(frozen=True)
class ClusterMap:
    shards: dict[str, Shard]
    placements: tuple[Placement, ...]
    connect_timeout: float = 2.0
    request_timeout: float = 300.0
    source: str = "<memory>"
    key_repo: str | None = None
    _cache: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)

    def owner(self, cloud: str) -> Shard | None:
        """The shard that holds ``cloud`` (None when no rule matches it)."""
        if cloud not in self._cache:
            if len(self._cache) > 100_000:
                self._cache.clear()
            name = next((p.pick(cloud) for p in self.placements if fnmatch.fnmatchcase(cloud, p.match)), None)
            self._cache[cloud] = name
        name = self._cache[cloud]
        return self.shards[name] if name is not None else None

    def cloud_rules(self, shard: str) -> list[CloudRule]:
        """The profile rules a shard applies to the clouds it creates (in the file's order)."""
        return [CloudRule(p.match, p.profile) for p in self.placements if p.profile and shard in p.shards]

    def public(self) -> dict[str, Any]:
        return {"shards": {s.name: {"address": s.address, "url": s.url} for s in self.shards.values()},
                "clouds": [{"match": p.match, "shards": list(p.shards), "profile": p.profile}
                           for p in self.placements],
                "timeouts": {"connect": self.connect_timeout, "request": self.request_timeout},
                "keystone_key_repo": self.key_repo, "source": self.source}


def _fail(source: str, where: str, message: str) -> ClusterError:
    return ClusterError(f"{source}: {where}: {message}")


def _parse_address(source: str, where: str, text: Any) -> tuple[str, int]:
    if not isinstance(text, str) or ":" not in text:
        raise _fail(source, where, "host:port, e.g. 127.0.0.1:8201")
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise _fail(source, where, f"host:port with a port 1..65535 (got {text!r})")
    return ("127.0.0.1" if host == "localhost" else host), int(port)


def _parse_shards(source: str, doc: Any) -> dict[str, Shard]:
    if not isinstance(doc, dict) or not doc:
        raise _fail(source, "shards", "a mapping of shard names to {address, url}")
    if len(doc) > MAX_SHARDS:
        raise _fail(source, "shards", f"at most {MAX_SHARDS} shards")
    shards: dict[str, Shard] = {}
    for name, spec in doc.items():
        where = f"shards.{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise _fail(source, where, "a shard name is 1-63 letters, digits, '-' or '_'")
        if not isinstance(spec, dict):
            raise _fail(source, where, "an object {address: host:port, url: http://...}")
        unknown = sorted(set(spec) - {"address", "url"})
        if unknown:
            raise _fail(source, where, f"unknown field(s): {', '.join(map(str, unknown))}")
        host, port = _parse_address(source, f"{where}.address", spec.get("address"))
        url = spec.get("url")
        if url is None:
            url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+/?$", url):
            raise _fail(source, f"{where}.url", f"a base URL such as http://10.0.0.2:{port} (got {url!r})")
        shards[name] = Shard(name, host, port, url.rstrip("/"))
    seen: dict[str, str] = {}
    for s in shards.values():
        if s.url in seen:
            raise _fail(source, f"shards.{s.name}.url", f"{s.url} is also shard '{seen[s.url]}'")
        seen[s.url] = s.name
    return shards


def _parse_placement(source: str, i: int, doc: Any, shards: dict[str, Shard]) -> Placement:
    where = f"clouds[{i}]"
    if not isinstance(doc, dict):
        raise _fail(source, where, "an object {match: GLOB, shard: NAME} or {match: GLOB, spread: [NAMES]}")
    unknown = sorted(set(doc) - {"match", "shard", "spread", "profile"})
    if unknown:
        raise _fail(source, where, f"unknown field(s): {', '.join(map(str, unknown))}")
    match = doc.get("match")
    if not isinstance(match, str) or not match or len(match) > 64 or "/" in match:
        raise _fail(source, f"{where}.match", "a cloud name or glob (1-64 characters, no '/')")
    if ("shard" in doc) == ("spread" in doc):
        raise _fail(source, where, "give exactly one of 'shard' (a name) or 'spread' (a list of names)")
    names = [doc["shard"]] if "shard" in doc else doc["spread"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise _fail(source, f"{where}.spread", "a non-empty list of shard names")
    for n in names:
        if n not in shards:
            raise _fail(source, where, f"unknown shard '{n}' (shards: {', '.join(shards)})")
    if len(set(names)) != len(names):
        raise _fail(source, f"{where}.spread", "a shard is listed twice")
    profile = doc.get("profile")
    if profile is not None and (not isinstance(profile, str) or not profile):
        raise _fail(source, f"{where}.profile", "a profile name")
    return Placement(match, tuple(names), profile)


def _timeout(source: str, doc: dict[str, Any], key: str, default: float) -> float:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
        raise _fail(source, f"timeouts.{key}", "seconds, a number in (0, 3600]")
    return float(value)


def parse(doc: Any, source: str = "<memory>") -> ClusterMap:
    """Validate a cluster document (already parsed YAML/JSON) and build the map."""
    if not isinstance(doc, dict):
        raise ClusterError(f"{source}: a cluster file is a mapping with 'shards' and 'clouds'")
    unknown = sorted(set(doc) - {"shards", "clouds", "timeouts", "keystone_key_repo"})
    if unknown:
        raise _fail(source, "(top level)", f"unknown field(s): {', '.join(map(str, unknown))}")
    shards = _parse_shards(source, doc.get("shards"))
    rules = doc.get("clouds")
    if not isinstance(rules, list) or not rules:
        raise _fail(source, "clouds", "a non-empty list of {match, shard|spread, profile?} rules")
    placements = tuple(_parse_placement(source, i, r, shards) for i, r in enumerate(rules))
    timeouts = doc.get("timeouts") or {}
    if not isinstance(timeouts, dict) or set(timeouts) - {"connect", "request"}:
        raise _fail(source, "timeouts", "an object {connect: seconds, request: seconds}")
    keys = doc.get("keystone_key_repo")
    if keys is not None and (not isinstance(keys, str) or not keys):
        raise _fail(source, "keystone_key_repo", "a directory path")
    if keys is not None and not Path(keys).is_absolute() and source != "<memory>":
        keys = str(Path(source).resolve().parent / keys)
    return ClusterMap(shards, placements, _timeout(source, timeouts, "connect", 2.0),
                      _timeout(source, timeouts, "request", 300.0), source, keys)


def load(path: str | Path) -> ClusterMap:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ClusterError(f"{p}: cannot read the cluster file: {exc.strerror or exc}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ClusterError(f"{p}: not valid YAML: {exc}") from None
    return parse(doc, str(p))


def dump(shards: dict[str, str], placements: list[dict[str, Any]], key_repo: str | None = None) -> str:
    """A cluster file's text (``spider cluster up`` writes one for its local shards)."""
    doc: dict[str, Any] = {"shards": {n: {"address": a} for n, a in shards.items()}, "clouds": placements}
    if key_repo:
        doc["keystone_key_repo"] = key_repo
    return yaml.safe_dump(doc, sort_keys=False)
