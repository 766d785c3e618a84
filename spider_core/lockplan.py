"""Which SP-Locks each operation takes: the lock hierarchy (``sponge``) or CB-Spider's own (``cbspider``).

One place decides the lock use of every operation whose locks differ between the modes, so the two can
be compared call for call; operations that lock the same way in both (get, list, a leaf's delete,
rule and listener changes) take their one lock directly in the services.

``sponge`` — the lock hierarchy:

* a create (or change) of a child takes a **read** lock on every parent it references and a **write**
  lock on its own name: subnet -> VPC; SG -> VPC; VM -> VPC, subnet, SGs, key pair; NLB -> VPC and
  member VMs. Creates under one parent share its read lock, so they run together; two creates of
  one name still queue on the name's write lock;
* a delete of a parent takes the parent's **write** lock, so it waits for the children being built
  on it, and then the cloud's (or Spider's) "in use" answer decides;
* a subnet is its own key, ``<vpc>/<subnet>`` in family ``subnet`` (CB-Spider keys subnets on their
  VPC), so a VM's read lock on its subnet holds back that subnet's removal and nothing else;
* a driver whose cloud fails on concurrent changes within one VPC names them in its capability
  ``serialize_in_vpc`` (``{"sg": True}``): those creates take the VPC's **write** lock instead, which
  is CB-Spider's serialisation, for that provider only;
* a VPC create on a ``single_vpc`` driver also takes the connection's write lock, so two creates of
  different names cannot both pass the one-VPC check.

``cbspider`` (and ``global``, which is CB-Spider's older lock granting the same requests) — CB-Spider's
lock use, in CB-Spider's order (``api-runtime/common-runtime/*Manager.go``): VPC create, add/remove
subnet W(vpc); register/unregister subnet W(vpc-family, subnetName); SG create W(vpc) then W(sg); SG
register W(vpc) when given, then W(sg); VM start W(vm) only; NLB create R(vpc) then W(nlb); NLB member
changes W(nlb) only.

VM-side families: a disk attach/detach, a NIC attach and a MyImage snapshot take a **read** lock on the
VM and a **write** lock on their own name (the VM cannot be terminated under them; CB-Spider: W on
the disk/NIC/image only); a NIC create reads its VPC, subnet and SGs; a public IP association reads
the VM and NIC it names (CB-Spider: W on the public IP only).

Lock order (``spider_core.splock.LOCK_ORDER``): connection, VPC, subnet, SG, key, VM, NLB, disk,
image, NIC, public IP; names sorted within a family. CB-Spider's sequences already follow it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from spider_core.drivers.base import SERIALIZE_IN_VPC_KINDS
from spider_core.splock import MODES, Need

__all__ = ["Plan", "SERIALIZABLE", "subnet_key", "vpc_create", "subnet_change", "subnet_adopt", "sg_create",
           "sg_register", "vm_start", "nlb_create", "nlb_members", "uses_vm", "nic_create", "public_ip_associate"]

# The child kinds a driver may serialise within one VPC (``DriverCapability.serialize_in_vpc`` keys).
SERIALIZABLE: tuple[str, ...] = SERIALIZE_IN_VPC_KINDS


@dataclass(frozen=True)
class Plan:
    """The locks of one request; ``exact``: take them as listed (CB-Spider's sequence), else in lock order."""

    needs: tuple[Need, ...]
    exact: bool = False


def _hierarchy(mode: str) -> bool:
    if mode not in MODES:
        raise ValueError(f"SP-Lock mode must be one of {', '.join(MODES)}, not {mode!r}")
    return mode == "sponge"


def _cb(*needs: Need) -> Plan:
    return Plan(tuple(needs), exact=True)


def _vpc(name: str, kind: str, serialize: Mapping[str, bool]) -> Need:
    """The parent VPC's lock for a child create: shared, unless the driver serialises this kind."""
    return Need("vpc", name, bool(serialize.get(kind)))


def subnet_key(vpc: str, subnet: str) -> str:
    """A subnet's lock name: subnet names are unique per VPC, not per connection."""
    return f"{vpc}/{subnet}"


def vpc_create(mode: str, name: str, connection: str, single_vpc: bool) -> Plan:
    if not _hierarchy(mode):
        return _cb(Need("vpc", name, True))
    needs = [Need("vpc", name, True)]
    if single_vpc:
        needs.append(Need("connection", connection, True))
    return Plan(tuple(needs))


def subnet_change(mode: str, vpc: str, subnet: str, serialize: Mapping[str, bool]) -> Plan:
    """Add or remove a subnet of a VPC."""
    if not _hierarchy(mode):
        return _cb(Need("vpc", vpc, True))
    return Plan((_vpc(vpc, "subnet", serialize), Need("subnet", subnet_key(vpc, subnet), True)))


def subnet_adopt(mode: str, vpc: str, subnet: str) -> Plan:
    """Register or unregister a subnet (MetaDB only). CB-Spider's quirk: W on the subnet name in the
    VPC family."""
    if not _hierarchy(mode):
        return _cb(Need("vpc", subnet, True))
    return Plan((Need("vpc", vpc, False), Need("subnet", subnet_key(vpc, subnet), True)))


def sg_create(mode: str, vpc: str, name: str, serialize: Mapping[str, bool]) -> Plan:
    if not _hierarchy(mode):
        return _cb(Need("vpc", vpc, True), Need("sg", name, True))
    return Plan((_vpc(vpc, "sg", serialize), Need("sg", name, True)))


def sg_register(mode: str, vpc: str, name: str) -> Plan:
    """Adopt a CSP security group; ``vpc`` may be '' (the owner is then looked up at the CSP)."""
    if not _hierarchy(mode):
        return _cb(*([Need("vpc", vpc, True)] if vpc else []), Need("sg", name, True))
    return Plan((*([Need("vpc", vpc, False)] if vpc else []), Need("sg", name, True)))


def vm_start(mode: str, name: str, vpc: str, subnet: str, sgs: Iterable[str], key: str,
             serialize: Mapping[str, bool], image: str = "", disks: Iterable[str] = ()) -> Plan:
    """``image``: the MyImage the VM starts from ('' for a public image); ``disks``: its data disks
    (written: they get attached)."""
    if not _hierarchy(mode):
        return _cb(Need("vm", name, True))
    return Plan((_vpc(vpc, "vm", serialize), Need("subnet", subnet_key(vpc, subnet), False),
                 *(Need("sg", sg, False) for sg in sgs), Need("key", key, False), Need("vm", name, True),
                 *(Need("disk", d, True) for d in disks), *([Need("image", image, False)] if image else [])))


def nlb_create(mode: str, name: str, vpc: str, vms: Iterable[str], serialize: Mapping[str, bool]) -> Plan:
    if not _hierarchy(mode):
        return _cb(Need("vpc", vpc, False), Need("nlb", name, True))
    return Plan((_vpc(vpc, "nlb", serialize), *(Need("vm", vm, False) for vm in vms), Need("nlb", name, True)))


def nlb_members(mode: str, name: str, vms: Iterable[str]) -> Plan:
    """Add or remove member VMs of an NLB."""
    if not _hierarchy(mode):
        return _cb(Need("nlb", name, True))
    return Plan((*(Need("vm", vm, False) for vm in vms), Need("nlb", name, True)))


def uses_vm(mode: str, family: str, name: str, vm: str) -> Plan:
    """A change of a disk, NIC or MyImage that involves a VM: attach, detach, snapshot."""
    if not _hierarchy(mode) or not vm:
        return _cb(Need(family, name, True))
    return Plan((Need("vm", vm, False), Need(family, name, True)))


def nic_create(mode: str, name: str, vpc: str, subnet: str, sgs: Iterable[str]) -> Plan:
    if not _hierarchy(mode):
        return _cb(Need("nic", name, True))
    return Plan((Need("vpc", vpc, False), Need("subnet", subnet_key(vpc, subnet), False),
                 *(Need("sg", sg, False) for sg in sgs), Need("nic", name, True)))


def public_ip_associate(mode: str, name: str, vm: str, nic: str) -> Plan:
    if not _hierarchy(mode):
        return _cb(Need("publicip", name, True))
    return Plan((*([Need("vm", vm, False)] if vm else []), *([Need("nic", nic, False)] if nic else []),
                 Need("publicip", name, True)))
