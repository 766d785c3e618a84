"""Nova's ``os-getConsoleOutput`` server action: the serial console log of a server.

With the data plane running, the log is the VM's own (``DataPlane.console``: its boot, user-data output,
sshd's host-key fingerprints). Without it, or for a server the data plane does not run, the log is
written from the server's state: a kernel and cloud-init boot of the image with the server's hostname,
instance id, interfaces and addresses, authorized key and host-key fingerprints, the lines tools grep
for (``Cloud-init v. ... finished``, ``-----BEGIN SSH HOST KEY FINGERPRINTS-----``, ``login:``). It is
deterministic: the same server always reads the same, and times come from its launch.

The rules are Nova's (``nova/api/openstack/compute/console_output.py`` and its schema,
``ComputeManager._tail_log``): ``length`` is an integer >= -1, a string of digits with an optional
sign, or null; it keeps the last ``length`` lines (0 gives "", null everything, and -1, which the schema
calls unlimited, drops the first line, as Nova's slicing does); a server that was never launched has no
host yet and answers 409 ``Instance <id> is not ready``; control characters other than tab and newline
are removed.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import ipaddress
import re
import time
from typing import TYPE_CHECKING, Any

from cloudtwin.errors import ApiError
from cloudtwin.ids import ec2_id, hostname_of
from cloudtwin.services.nova.models import Server

if TYPE_CHECKING:
    from cloudtwin.routing import Call

_LENGTH = re.compile(r"^-?[0-9]+$")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f]")
CLOUD_INIT = "24.1.3-0ubuntu1~22.04.1"
MAX_CONSOLE_BYTES = 100 * 1024      # libvirt's driver returns at most the log's last 100 KiB
KERNEL = "5.15.0-105-generic"


def _invalid(value: Any, why: str) -> ApiError:
    return ApiError(400, f"Invalid input for field/attribute length. Value: {value}. {why}")


def parse_length(arg: Any) -> int | None:
    """The action's ``length``, validated as Nova's JSON schema does."""
    if not isinstance(arg, dict):
        raise ApiError(400, f"Invalid input for field/attribute os-getConsoleOutput. Value: {arg}. "
                            f"{arg!r} is not of type 'object'")
    extra = sorted(k for k in arg if k != "length")
    if extra:
        raise ApiError(400, "Invalid input for field/attribute os-getConsoleOutput. Value: "
                            f"{arg}. Additional properties are not allowed ({', '.join(map(repr, extra))} "
                            f"{'was' if len(extra) == 1 else 'were'} unexpected)")
    raw = arg.get("length")
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise _invalid(raw, f"{raw!r} is not of type 'integer', 'string', 'null'")
    if isinstance(raw, str):
        if not _LENGTH.match(raw) or len(raw) > 20:
            raise _invalid(raw, f"{raw!r} does not match '^-?[0-9]+$'")
        return int(raw)
    if raw < -1:
        raise _invalid(raw, f"{raw} is less than the minimum of -1")
    return raw


def tail(text: str, length: int | None) -> str:
    """The last ``length`` lines (Nova's ``_tail_log``, quirks included)."""
    if length is None:
        return text
    if length == 0:
        return ""
    return "\n".join(text.split("\n")[-length:])


# ---- the log written from the server's state ------------------------------------------------------

def _fingerprint(seed: str, kind: str) -> str:
    digest = hashlib.sha256(f"cloudtwin-host-key/{seed}/{kind}".encode()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _key_fingerprint(public_key: str) -> str:
    parts = public_key.split()
    try:
        blob = base64.b64decode(parts[1], validate=True) if len(parts) > 1 else public_key.encode()
    except ValueError:
        blob = public_key.encode()
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _stamp(ts: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(ts))


def _table(title: str, header: list[str], rows: list[list[str]]) -> list[str]:
    """cloud-init's ``ci-info`` table layout."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) + 2 if rows else len(h) + 2 for i, h in enumerate(header)]
    rule = "+" + "+".join("-" * w for w in widths) + "+"
    def line(cells: list[str]) -> str:
        return "|" + "|".join(c.center(w) for c, w in zip(cells, widths)) + "|"
    banner = title.center(len(rule) - 2, "+")
    out = [f"+{banner}+", rule, line(header), rule] + [line(r) for r in rows] + [rule]
    return ["ci-info: " + x for x in out]


def boot_log(region: Any, server: Server) -> str:
    """A plausible, deterministic serial log of the server's boot (and power-off when it is stopped)."""

    host = hostname_of(server.name)
    image = region.glance.find(server.project_id, server.image_id) if server.image_id else None
    user = getattr(image, "login_user", None) or "ubuntu"
    props = getattr(image, "properties", None) or {}
    distro = f"{str(props.get('os_distro') or 'ubuntu').capitalize()} {props.get('os_version') or ''}".strip()
    launched = server.launched_at or server.created_at
    iid = ec2_id(server.id, "i")
    neutron = region.neutron
    ports = neutron.ports_of_device(server.id)
    lines = [
        f"[    0.000000] Linux version {KERNEL} (buildd@lcy02-amd64-080) (gcc (Ubuntu 11.4.0-1ubuntu1~22.04) 11.4.0)",
        "[    0.000000] Command line: BOOT_IMAGE=/vmlinuz root=LABEL=cloudimg-rootfs ro console=tty1 console=ttyS0",
        "[    0.000000] DMI: OpenStack Foundation OpenStack Nova, BIOS 1.15.0-1 04/01/2014",
        "[    0.000000] Hypervisor detected: KVM",
        f"[    0.004512] Memory: {server.ram * 1024 - 61440}K/{server.ram * 1024}K available",
        f"[    0.081220] smpboot: Allowing {max(server.vcpus, 1)} CPUs, 0 hotplug CPUs",
        "[    0.912004] EXT4-fs (vda1): mounted filesystem with ordered data mode. Opts: (null)",
    ]
    for k, port in enumerate(ports):
        lines.append(f"[    1.{104 + k:03d}311] virtio_net virtio{k} ens{3 + k}: renamed from eth{k}")
    lines += [
        f"[    4.512201] cloud-init[512]: Cloud-init v. {CLOUD_INIT} running 'init-local' at {_stamp(launched + 4)}. "
        "Up 4.51 seconds.",
        f"[    5.604418] cloud-init[600]: Cloud-init v. {CLOUD_INIT} running 'init' at {_stamp(launched + 5)}. "
        "Up 5.60 seconds.",
        f"[    5.611020] cloud-init[600]: instance-id {server.id} (EC2 {iid}), local-hostname {host}",
    ]
    rows = [["lo", "True", "127.0.0.1", "255.0.0.0", "host", "."]]
    for k, port in enumerate(ports):
        for ip in port.fixed_ips:
            addr = ip["ip_address"]
            sub = neutron.subnets.get(ip.get("subnet_id", ""))
            cidr = ipaddress.ip_network(sub.cidr, strict=False) if sub is not None else None
            mask = str(cidr.netmask) if cidr is not None and cidr.version == 4 else "."
            shown = addr if ":" not in addr or cidr is None else f"{addr}/{cidr.prefixlen}"
            rows.append([f"ens{3 + k}", "True", shown, mask, "global", port.mac_address])
    lines += _table("Net device info", ["Device", "Up", "Address", "Mask", "Scope", "Hw-Address"], rows)
    kp = None
    if server.key_name:
        try:
            kp = region.nova.get_keypair(server.user_id, server.project_id, server.key_name)
        except ApiError:
            kp = None
    if kp is not None:
        lines += _table(f"Authorized keys from /home/{user}/.ssh/authorized_keys for user {user}",
                        ["Keytype", "Fingerprint (sha256)", "Options", "Comment"],
                        [[kp.public_key.split()[0] if kp.public_key.split() else "ssh-rsa",
                          _key_fingerprint(kp.public_key), "-", kp.name]])
    else:
        lines.append(f"ci-info: no authorized SSH keys fingerprints found for user {user}.")
    lines += [
        f"<14>{time.strftime('%b %d %H:%M:%S', time.gmtime(launched + 8))} cloud-init: "
        "#############################################################",
        "-----BEGIN SSH HOST KEY FINGERPRINTS-----",
        f"256 {_fingerprint(server.id, 'ecdsa')} root@{host} (ECDSA)",
        f"256 {_fingerprint(server.id, 'ed25519')} root@{host} (ED25519)",
        f"3072 {_fingerprint(server.id, 'rsa')} root@{host} (RSA)",
        "-----END SSH HOST KEY FINGERPRINTS-----",
        "#############################################################",
        f"[    9.870310] cloud-init[820]: Cloud-init v. {CLOUD_INIT} running 'modules:final' at "
        f"{_stamp(launched + 9)}. Up 9.87 seconds.",
        f"[   10.012877] cloud-init[820]: Cloud-init v. {CLOUD_INIT} finished at {_stamp(launched + 10)}. "
        "Datasource DataSourceOpenStackLocal [net,ver=2].  Up 10.01 seconds",
        "",
        f"{distro} {host} ttyS0",
        "",
        f"{host} login: ",
    ]
    attrs = region.nova.life.attrs(server.state)
    if attrs.get("vm_state") == "stopped":
        lines += ["[  OK  ] Reached target System Power Off.", "[   61.000411] reboot: Power down"]
    return "\n".join(lines) + "\n"


# ---- the action -----------------------------------------------------------------------------------

async def _from_dataplane(call: "Call", server: Server) -> str | None:
    dataplane = call.twin.dataplane
    console = getattr(dataplane, "console", None) if dataplane is not None else None
    if console is None or call.cloud is None or call.region is None:
        return None
    text = console(call.cloud.name, call.region.name, server.id)
    if inspect.isawaitable(text):
        text = await text
    return text if isinstance(text, str) else None


async def console_output(call: "Call", server: Server, arg: Any) -> str:
    """The ``output`` of ``{"os-getConsoleOutput": arg}`` for ``server``."""
    length = parse_length(arg)
    if server.launched_at is None:       # Nova: no host yet (check_instance_host) -> InstanceNotReady
        raise ApiError(409, f"Instance {server.id} is not ready")
    assert call.region is not None
    text = await _from_dataplane(call, server)
    if text is None:
        text = boot_log(call.region, server)
    return _CONTROL.sub("", tail(text[-MAX_CONSOLE_BYTES:], length))
