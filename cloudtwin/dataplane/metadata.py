"""Nova's metadata service as a data-plane VM sees it at ``http://169.254.169.254``.

Two halves:

* pure functions that build every document from the twin's state (``region`` is a
  ``cloudtwin.clouds.RegionState``, ``server`` a Nova ``Server``), in the shapes and under the paths of
  Nova's ``nova/api/metadata/base.py`` (``InstanceMetadata``, ``RouteConfiguration``, ``ec2_md_print``,
  ``find_path_in_tree``) and ``nova/virt/netutils.py`` (``get_network_metadata``), so cloud-init's
  OpenStack and EC2 datasources read them unchanged;
* a small HTTP/1.1 server (GET/HEAD) for a socket opened inside the VM's namespace, modelled on
  ``responders``: the socket keeps its namespace for life and is served from the twin's event loop, so a
  VM's metadata service costs one file descriptor and no thread or process.

Documents are built per request from ``lookup()``, so a floating IP associated after boot shows up at
once, and a deleted server answers 404.

Two ids: OpenStack's ``meta_data.json`` ``uuid`` is the server id (cloud-init's OpenStack datasource
copies it into its ``instance-id``, so ``cloud-init query instance_id`` inside a VM prints the server id);
the EC2 ``meta-data/instance-id`` is Nova's EC2 form ``i-%08x`` of an internal integer. Nova takes that
integer from its ``instance_id_mappings`` table; the twin has no such table and uses the first 32 bits of
the server id, the same number it shows as ``OS-EXT-SRV-ATTR:instance_name`` (``instance-%08x``). Images
get ``ami-%08x`` the same way.

Where the twin differs: Nova copies the key pair into the instance at boot, the twin reads the key pair
now (a key pair deleted after boot drops out of ``public_keys``, as Nova does when it cannot find one);
``random_seed`` is fresh per request, as in Nova.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import json
import logging
import os
import posixpath
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

from cloudtwin.errors import ApiError
from cloudtwin.ids import ec2_id, hostname_of

log = logging.getLogger("cloudtwin.dataplane.metadata")

METADATA_ADDRESS = "169.254.169.254"
METADATA_PORT = 80
DHCP_DOMAIN = "novalocal"          # Nova's [api] dhcp_domain default: hostnames are "<name>.novalocal"
ROOT_DEVICE = "/dev/vda"

# nova/api/metadata/base.py VERSIONS (EC2) and OPENSTACK_VERSIONS; "latest" is the last of each
EC2_VERSIONS = ("1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15", "2008-02-01",
                "2008-09-01", "2009-04-04")
FOLSOM, GRIZZLY, HAVANA, LIBERTY = "2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15"
NEWTON_ONE, NEWTON_TWO, OCATA, ROCKY = "2016-06-30", "2016-10-06", "2017-02-22", "2018-08-27"
VICTORIA, EPOXY = "2020-10-14", "2025-04-04"
OPENSTACK_VERSIONS = (FOLSOM, GRIZZLY, HAVANA, LIBERTY, NEWTON_ONE, NEWTON_TWO, OCATA, ROCKY, VICTORIA, EPOXY)

TEXT = "text/plain; charset=UTF-8"
JSON = "application/json"


class NotFound(Exception):
    """No document at this path (Nova's ``InvalidMetadataPath``): the server answers 404."""


@dataclass(frozen=True)
class Document:
    body: bytes
    content_type: str = TEXT


# ---- identities ------------------------------------------------------------------------------------

def instance_id(server: Any) -> str:
    return ec2_id(server.id, "i")


def hostname(server: Any) -> str:
    """The server's hostname with Nova's ``dhcp_domain`` (``vm-1.novalocal``); the short part is the
    ``OS-EXT-SRV-ATTR:hostname`` the compute API shows."""
    short = hostname_of(server.name)
    return f"{short}.{DHCP_DOMAIN}" if DHCP_DOMAIN else short


def user_data(server: Any) -> bytes | None:
    """The decoded user data (Nova stores it base64-encoded), None when the server has none."""
    if server.user_data is None:
        return None
    try:
        return base64.b64decode(server.user_data)
    except (binascii.Error, ValueError):
        return None


def keypair(region: Any, server: Any) -> Any | None:
    if not server.key_name:
        return None
    try:
        return region.nova.get_keypair(server.user_id, server.project_id, server.key_name)
    except ApiError:
        return None


def _security_group_names(region: Any, server: Any, ports: list[Any]) -> list[str]:
    ids: list[str] = [sg for p in ports for sg in p.security_groups] if ports else list(server.security_groups)
    groups = region.neutron.security_groups
    return list(dict.fromkeys(groups[i].name if i in groups else i for i in ids))


def _ips(region: Any, ports: list[Any]) -> tuple[list[str], list[str]]:
    """(fixed IPv4 addresses, floating addresses) in port order: Nova's ``get_ec2_ip_info``."""
    fixed = [ip["ip_address"] for p in ports for ip in p.fixed_ips if ":" not in ip["ip_address"]]
    floating = [f.floating_ip_address for p in ports for f in region.neutron.floatingips_of_port(p.id)]
    return fixed, floating


def _visible_versions(today: str | None = None) -> list[str]:
    """Nova hides OpenStack versions dated in the future from the ``/openstack`` listing."""
    day = today or time.strftime("%Y-%m-%d", time.gmtime())
    return [v for v in OPENSTACK_VERSIONS if v <= day] + ["latest"]


def _os_version(version: str) -> str:
    if version == "latest":
        return OPENSTACK_VERSIONS[-1]
    if version not in OPENSTACK_VERSIONS:
        raise NotFound(version)
    return version


def _since(required: str, version: str) -> bool:
    return OPENSTACK_VERSIONS.index(version) >= OPENSTACK_VERSIONS.index(required)


# ---- OpenStack documents ---------------------------------------------------------------------------

def meta_data(region: Any, server: Any, version: str = "latest") -> dict[str, Any]:
    """``openstack/<version>/meta_data.json``, keys in Nova's order and gated by version."""
    version = _os_version(version)
    doc: dict[str, Any] = {"uuid": server.id}
    if server.metadata:
        doc["meta"] = dict(server.metadata)
    kp = keypair(region, server)
    if kp is not None:
        doc["public_keys"] = {kp.name: kp.public_key}
        doc["keys"] = [{"name": kp.name, "type": kp.type, "data": kp.public_key}]
    doc["hostname"] = hostname(server)
    doc["name"] = server.name
    doc["launch_index"] = server.launch_index
    doc["availability_zone"] = server.availability_zone
    if _since(GRIZZLY, version):
        doc["random_seed"] = base64.b64encode(os.urandom(512)).decode()
    if _since(LIBERTY, version):
        doc["project_id"] = server.project_id
    if _since(NEWTON_ONE, version):
        doc["devices"] = []          # Nova lists only tagged devices; the twin's API takes no device tags
    if _since(VICTORIA, version):
        doc["dedicated_cpus"] = []   # no flavor of the twin pins CPUs
    return doc


def _subnet_ips(region: Any, port: Any, version: int) -> tuple[Any, list[str]]:
    """The port's first subnet of an IP version and the port's addresses on it (Nova reads only the
    first IPv4 and the first IPv6 subnet of a port)."""
    subnets = region.neutron.subnets
    first = None
    ips: list[str] = []
    for entry in port.fixed_ips:
        sub = subnets.get(entry.get("subnet_id", ""))
        if sub is None or sub.ip_version != version:
            continue
        if first is None:
            first = sub
        if sub is first:
            ips.append(entry["ip_address"])
    return first, ips


def _dhcp_server(region: Any, subnet: Any) -> str | None:
    for p in region.neutron.ports_of_network(subnet.network_id):
        if p.device_owner == "network:dhcp":
            for entry in p.fixed_ips:
                if entry.get("subnet_id") == subnet.id:
                    return str(entry["ip_address"])
    return None


def _dns(subnet: Any) -> list[dict[str, str]]:
    return [{"type": "dns", "address": a} for a in subnet.dns_nameservers]


def _net_entry(subnet: Any, ips: list[str], version: int, num: int, link_id: str, network_id: str) -> dict[str, Any]:
    """One ``networks`` item: Nova's ``_get_nets`` (short ``ipvN_dhcp`` form when DHCP configures it)."""
    net_type = ""
    if subnet.ipv6_address_mode:
        net_type = f"_{subnet.ipv6_address_mode}"
    elif subnet.enable_dhcp:
        return {"id": f"network{num}", "type": f"ipv{version}_dhcp", "link": link_id, "network_id": network_id}
    cidr = ipaddress.ip_network(subnet.cidr, strict=False)
    routes: list[dict[str, str]] = []
    if subnet.gateway_ip:
        any_addr = "0.0.0.0" if version == 4 else "::"
        routes.append({"network": any_addr, "netmask": any_addr, "gateway": subnet.gateway_ip})
    for route in subnet.host_routes:
        dest = ipaddress.ip_network(route["destination"], strict=False)
        routes.append({"network": str(dest.network_address), "netmask": str(dest.netmask),
                       "gateway": route["nexthop"]})
    return {"id": f"network{num}", "type": f"ipv{version}{net_type}", "link": link_id, "ip_address": ips[0],
            "netmask": str(cidr.netmask), "routes": routes, "network_id": network_id, "services": _dns(subnet)}


def network_data(region: Any, server: Any) -> dict[str, Any]:
    """``openstack/<version>/network_data.json``: ``links`` (one per port, ``tap`` + port id as Nova's
    devname), ``networks`` (first IPv4 and first IPv6 subnet per port) and ``services`` (DNS)."""
    links: list[dict[str, Any]] = []
    nets: list[dict[str, Any]] = []
    services: list[dict[str, str]] = []
    net_num = -1
    networks = region.neutron.networks
    for port in region.neutron.ports_of_device(server.id):
        v4, ips4 = _subnet_ips(region, port, 4)
        v6, ips6 = _subnet_ips(region, port, 6)
        if v4 is None and v6 is None:
            continue
        network = networks.get(port.network_id)
        has_dhcp_server = any(_dhcp_server(region, s) for s in (v4, v6) if s is not None)
        link = {"id": ("tap" + port.id)[:14], "vif_id": port.id, "type": "ovs",
                "mtu": None if has_dhcp_server or network is None else network.mtu,
                "ethernet_mac_address": port.mac_address}
        links.append(link)
        for subnet, ips, version in ((v4, ips4, 4), (v6, ips6, 6)):
            if subnet is None or not ips:
                continue
            net_num += 1
            nets.append(_net_entry(subnet, ips, version, net_num, link["id"], port.network_id))
            services += [d for d in _dns(subnet) if d not in services]
    return {"links": links, "networks": nets, "services": services}


def vendor_data() -> dict[str, Any]:
    """Nova's StaticJSON provider without a file: ``{}``."""
    return {}


def vendor_data2() -> dict[str, Any]:
    return {"static": vendor_data()}


def _openstack_listing(server: Any, version: str) -> list[str]:
    """What ``openstack/<version>/`` lists (Nova's ``_handle_version``)."""
    out = ["meta_data.json"]
    if server.user_data is not None:
        out.append("user_data")
    for since, name in ((GRIZZLY, "password"), (HAVANA, "vendor_data.json"), (LIBERTY, "network_data.json"),
                        (NEWTON_TWO, "vendor_data2.json")):
        if _since(since, version):
            out.append(name)
    return out


def _json(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def openstack_item(region: Any, server: Any, tokens: list[str]) -> Document:
    """``/openstack/<version>[/<name>]`` (``RouteConfiguration.handle_path``)."""
    version = _os_version(tokens[0])
    name = "/".join(tokens[1:])
    if not name:
        return Document(_text(_openstack_listing(server, version)))
    if name == "meta_data.json":
        return Document(_json(meta_data(region, server, version)), JSON)
    if name == "user_data":
        data = user_data(server)
        if data is None:
            raise NotFound(name)
        return Document(data)
    if name == "password" and _since(GRIZZLY, version):
        return Document(b"")          # no password was ever posted: Nova answers an empty body
    if name == "vendor_data.json" and _since(HAVANA, version):
        return Document(_json(vendor_data()), JSON)
    if name == "vendor_data2.json" and _since(NEWTON_TWO, version):
        return Document(_json(vendor_data2()), JSON)
    if name == "network_data.json" and _since(LIBERTY, version):
        return Document(_json(network_data(region, server)))    # Nova leaves this one text/plain
    raise NotFound(name)


# ---- EC2 documents ---------------------------------------------------------------------------------

def _ec2_since(required: str, version: str) -> bool:
    return EC2_VERSIONS.index(version) >= EC2_VERSIONS.index(required)


def _block_device_mapping(region: Any, server: Any) -> dict[str, str]:
    """Nova's ``instance_block_mapping``: the root device, then ``ebsN`` per attached volume by device."""
    out = {"ami": ROOT_DEVICE.rsplit("/", 1)[-1], "root": ROOT_DEVICE}
    cinder = getattr(region, "cinder", None)
    devices: list[str] = []
    if cinder is not None:
        devices = sorted(str(getattr(a, "device", "") or "") for a in cinder.attachments_of_server(server.id))
    for n, dev in enumerate(devices):
        out[f"ebs{n}"] = dev
    return out


def ec2_tree(region: Any, server: Any, version: str = "latest") -> dict[str, Any]:
    """``<version>/`` of the EC2-style service as a tree (Nova's ``get_ec2_metadata``)."""
    if version == "latest":
        version = EC2_VERSIONS[-1]
    if version not in EC2_VERSIONS:
        raise NotFound(version)
    ports = region.neutron.ports_of_device(server.id)
    fixed, floating = _ips(region, ports)
    host = hostname(server)
    image_ami = ec2_id(server.image_id, "ami") if server.image_id else None   # Nova prints None for a volume root
    md: dict[str, Any] = {
        "ami-id": image_ami, "ami-launch-index": server.launch_index, "ami-manifest-path": "FIXME",
        "instance-id": instance_id(server), "hostname": host, "local-ipv4": fixed[0] if fixed else "",
        "reservation-id": server.reservation_id, "security-groups": _security_group_names(region, server, ports)}
    kp = keypair(region, server)
    if kp is not None:
        md["public-keys"] = {"0": {"_name": f"0={kp.name}", "openssh-key": kp.public_key}}
    if _ec2_since("2007-01-19", version):
        md.update({"local-hostname": host, "public-hostname": host, "public-ipv4": floating[0] if floating else ""})
    if _ec2_since("2007-08-29", version):
        flavor = region.nova.flavors.get(server.flavor_id)
        md["instance-type"] = flavor.name if flavor is not None else server.flavor_id
    if _ec2_since("2007-12-15", version):
        md["block-device-mapping"] = _block_device_mapping(region, server)
    if _ec2_since("2008-02-01", version):
        md["placement"] = {"availability-zone": server.availability_zone}
    if _ec2_since("2008-09-01", version):
        md["instance-action"] = "none"
    tree: dict[str, Any] = {"meta-data": md}
    data = user_data(server)
    if data is not None:
        tree["user-data"] = data
    return tree


def _find(tree: Any, tokens: list[str]) -> Any:
    """Walk the tree (Nova's ``find_path_in_tree``); a path through a leaf is a 404, not Nova's 500."""
    for token in tokens:
        if not isinstance(tree, dict) or token not in tree:
            raise NotFound("/".join(tokens))
        tree = tree[token]
    return tree


def ec2_print(data: Any) -> bytes:
    """Nova's ``ec2_md_print``: a directory lists sorted keys one a line, sub-directories with a trailing
    ``/`` (or their ``_name``, as ``public-keys/`` lists ``0=<key name>``); a list is one item a line."""
    if isinstance(data, dict):
        lines = []
        for key in sorted(data):
            if key == "_name":
                continue
            value = data[key]
            if isinstance(value, dict):
                lines.append(str(value["_name"]) if "_name" in value else key + "/")
            else:
                lines.append(key)
        return "\n".join(lines).encode()
    if isinstance(data, list):
        return "\n".join(str(x) for x in data).encode()
    if isinstance(data, bytes):
        return data
    return str(data).encode()


def _text(items: list[str]) -> bytes:
    return "\n".join(items).encode()


# ---- path lookup -----------------------------------------------------------------------------------

def lookup_path(region: Any, server: Any, path: str) -> Document:
    """The document at ``path`` (Nova's ``InstanceMetadata.lookup``: normalised, ``/`` lists the EC2
    versions, anything not under ``/openstack`` or ``/ec2`` is EC2). Raises ``NotFound``."""
    path = posixpath.normpath("/" + path.lstrip("/"))
    if path in ("/", "//"):
        return Document(_text(list(EC2_VERSIONS) + ["latest"]))
    tokens = [t for t in path.split("/")[1:] if t]
    if tokens[0] not in ("ec2", "openstack"):
        tokens = ["ec2"] + tokens
    if len(tokens) == 1:
        if tokens[0] == "openstack":
            return Document(_text(_visible_versions()))
        return Document(_text(list(EC2_VERSIONS) + ["latest"]))
    if tokens[0] == "openstack":
        return openstack_item(region, server, tokens[1:])
    return Document(ec2_print(_find(ec2_tree(region, server, tokens[1]), tokens[2:])))


# ---- the HTTP server -------------------------------------------------------------------------------

MAX_HEAD = 8192            # request line + headers
MAX_BODY = 65536           # a GET or HEAD body is read and dropped, up to this
MAX_CONNECTIONS = 64       # per VM: one guest cannot hold the twin's descriptors
HEAD_TIMEOUT = 10.0        # to send a request's head, and the keep-alive idle limit
Lookup = Callable[[], "tuple[Any, Any] | None"]

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            413: "Payload Too Large", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
            501: "Not Implemented", 505: "HTTP Version Not Supported"}
_EXPLAIN = {404: "The resource could not be found.", 405: "The method is not allowed for this resource.",
            400: "The request could not be understood.", 413: "The request body is too large.",
            431: "The request head is too large.", 500: "The server could not answer this request.",
            501: "Chunked request bodies are not supported.", 505: "Only HTTP/1.0 and HTTP/1.1 are served."}


def open_socket(address: str = METADATA_ADDRESS, port: int = METADATA_PORT) -> socket.socket:
    """A listening TCP socket on ``address:port`` in the calling thread's namespace (run it under
    ``netns.entered`` on a worker thread, like ``responders.open_sockets``).

    ``IP_FREEBIND`` lets the bind succeed before the address is configured; packets reach the socket
    once the namespace has the address (``169.254.169.254/32`` on ``lo``, which must be up)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_FREEBIND", 15), 1)
        sock.bind((address, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass
class MetadataServer:
    """One VM's served metadata socket; ``close`` must run before the namespace is deleted (an open
    socket keeps a deleted namespace alive)."""

    server: asyncio.AbstractServer | None = None
    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for w in list(self.writers):
            w.transport.abort()
        self.writers.clear()

    @property
    def port(self) -> int | None:
        if self.server is None or not self.server.sockets:
            return None
        return int(self.server.sockets[0].getsockname()[1])


def _response(status: int, body: bytes = b"", content_type: str = TEXT, *, head: bool = False,
              keep_alive: bool = True, extra: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}", f"Content-Type: {content_type}",
             f"Content-Length: {len(body)}", "Connection: " + ("keep-alive" if keep_alive else "close")]
    lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head else body)


def _error(status: int, *, head: bool = False, keep_alive: bool = True, extra: dict[str, str] | None = None) -> bytes:
    body = f"{status} {_REASONS.get(status, 'Error')}\n\n{_EXPLAIN.get(status, '')}\n".encode()
    return _response(status, body, head=head, keep_alive=keep_alive, extra=extra)


def answer(method: str, target: str, lookup: Lookup) -> tuple[int, bytes, str]:
    """(status, body, content type) for one request; never raises."""
    if method not in ("GET", "HEAD"):
        return 405, b"", TEXT
    path = unquote(urlsplit(target).path or "/")
    try:
        found = lookup()
        if found is None:
            return 404, b"", TEXT
        region, server = found
        doc = lookup_path(region, server, path)
    except NotFound:
        return 404, b"", TEXT
    except Exception:    # a broken document must not kill the connection loop or reach the guest
        log.exception("metadata: %s %s failed", method, path)
        return 500, b"", TEXT
    return 200, doc.body, doc.content_type


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> int | None:
    """Drop the request body; the status to answer and close with when it is unacceptable."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return 501
    raw = headers.get("content-length", "0").strip() or "0"
    if not raw.isdigit() or len(raw) > 12:
        return 400
    length = int(raw)
    if length > MAX_BODY:
        return 413
    if length:
        await asyncio.wait_for(reader.readexactly(length), HEAD_TIMEOUT)
    return None


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]] | None:
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:
        return None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha():
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            return None
        headers[name.strip().lower()] = value.strip()
    return parts[0], parts[1], parts[2], headers


async def _connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, lookup: Lookup,
                      out: MetadataServer) -> None:
    if len(out.writers) >= MAX_CONNECTIONS:
        writer.transport.abort()
        return
    out.writers.add(writer)
    try:
        while True:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
            except asyncio.LimitOverrunError:
                writer.write(_error(431, keep_alive=False))
                break
            except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
                break
            parsed = _parse_head(head[:-4])
            if parsed is None:
                writer.write(_error(400, keep_alive=False))
                break
            method, target, version, headers = parsed
            if version not in ("HTTP/1.1", "HTTP/1.0"):
                writer.write(_error(505, keep_alive=False))
                break
            refused = await _read_body(reader, headers)
            if refused is not None:
                writer.write(_error(refused, keep_alive=False))
                break
            conn = headers.get("connection", "").lower()
            keep = "close" not in conn if version == "HTTP/1.1" else "keep-alive" in conn
            head_only = method == "HEAD"
            status, body, ctype = answer(method, target, lookup)
            if status == 200:
                writer.write(_response(200, body, ctype, head=head_only, keep_alive=keep))
            else:
                extra = {"Allow": "GET, HEAD"} if status == 405 else None
                writer.write(_error(status, head=head_only, keep_alive=keep, extra=extra))
            await writer.drain()
            if not keep:
                break
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
        pass
    finally:
        out.writers.discard(writer)
        writer.close()


async def serve(sock: socket.socket, lookup: Lookup) -> MetadataServer:
    """Serve the metadata documents on ``sock`` (from ``open_socket``) from the running loop.

    ``lookup()`` returns the VM's current ``(region, server)``, or None once the server is gone."""
    out = MetadataServer()
    try:
        out.server = await asyncio.start_server(lambda r, w: _connection(r, w, lookup, out), sock=sock,
                                                limit=MAX_HEAD)
    except BaseException:
        sock.close()
        raise
    return out
