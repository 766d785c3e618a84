"""Neutron ports of one region (a part of ``NeutronState``)."""

from __future__ import annotations

import ipaddress
from typing import Any

from cloudtwin.errors import ApiError
from cloudtwin.services.neutron.ipam import invalid
from cloudtwin.services.neutron.resources import Network, Port, MAX_FIXED_IPS


AUTO_ADDRESS_MODES = ("slaac", "dhcpv6-stateless")


def is_auto_address(sn: Any) -> bool:
    """An IPv6 subnet whose hosts configure their own address from the router's prefix."""
    return sn.ip_version == 6 and sn.ipv6_address_mode in AUTO_ADDRESS_MODES


def eui64(cidr: str, mac: str) -> str:
    """The modified EUI-64 address of ``mac`` in ``cidr`` (RFC 4291 appendix A)."""
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    iid = octets[:3] + [0xFF, 0xFE] + octets[3:]
    net = ipaddress.ip_network(cidr)
    return str(ipaddress.ip_address(int(net.network_address) + int.from_bytes(bytes(iid), "big")))


def merge_dhcp_opts(current: list[dict[str, Any]], changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Neutron's update of a port's extra DHCP options: an option (by name and IP version) with a value
    is set, one with a null value is removed; the others stay."""
    out = [dict(o) for o in current]
    for change in changes:
        same = [o for o in out if o["opt_name"] == change["opt_name"] and o["ip_version"] == change["ip_version"]]
        for o in same:
            out.remove(o)
        if change["opt_value"] is not None:
            out.append(dict(change))
    return out


class PortMethods:
    """Ports: fixed IPs, device binding, the indexes by device, network, subnet and IP."""

    def _checked_groups(self, project_id: str, ids: list[str], psec: bool) -> list[str]:
        """The distinct groups ``ids`` name (each must exist); refused on a port without port security."""
        sgs: list[str] = []
        for sid in ids:
            sg = self.get_security_group(project_id, sid)
            if sg.id not in sgs:
                sgs.append(sg.id)
        if sgs and not psec:
            raise ApiError(400, "Port security must be enabled and port must have an IP address in order "
                                "to use security groups.", code="PortSecurityAndIPRequiredForSecurityGroups")
        return sgs

    def _new_mac(self) -> str:
        while True:
            n = self._rng.getrandbits(24)
            mac = f"fa:16:3e:{n >> 16:02x}:{(n >> 8) & 0xff:02x}:{n & 0xff:02x}"
            if mac not in self._macs:
                return mac

    def add_port(self, project_id: str, network_id: str, *, fixed_ips: list[dict[str, Any]] | None = None,
                 security_groups: list[str] | None = None, name: str = "", description: str = "",
                 device_id: str = "", device_owner: str = "", mac_address: str | None = None,
                 admin_state_up: bool = True, port_security_enabled: bool | None = None,
                 allowed_address_pairs: list[dict[str, Any]] | None = None, vnic_type: str = "normal",
                 host_id: str = "", tags: list[str] | None = None, created_for_device: bool = False,
                 extra_dhcp_opts: list[dict[str, Any]] | None = None) -> Port:
        self.ensure_project(project_id)
        net = self.get_network(project_id, network_id)
        self._check_quota("ports", project_id)
        if mac_address is not None:
            mac = mac_address.lower()
            if mac in self._macs:
                raise ApiError(409, f"Unable to complete operation for network {net.id}. The mac address "
                                    f"{mac_address} is in use.", code="MacAddressInUse")
        else:
            mac = self._new_mac()
        psec = net.port_security_enabled if port_security_enabled is None else port_security_enabled
        if security_groups is None:
            sgs = []
            if psec and self.profile.default_security_group and device_owner.split(":")[0] not in (
                    "network",):
                sgs = [self._default_sg[project_id]] if project_id in self._default_sg else []
        else:
            sgs = self._checked_groups(project_id, security_groups, psec)
        if allowed_address_pairs and not psec:
            raise ApiError(409, "Port Security must be enabled in order to have allowed address pairs on a port.",
                           code="AddressPairAndPortSecurityRequired")
        pairs = [{"ip_address": p["ip_address"], "mac_address": p.get("mac_address") or mac}
                 for p in allowed_address_pairs or []]
        ips = self._allocate_fixed_ips(net, fixed_ips, mac)
        port = Port(id=self._new_id(), project_id=project_id, network_id=net.id, mac_address=mac,
                    fixed_ips=ips, device_id=device_id, device_owner=device_owner, admin_state_up=admin_state_up,
                    security_groups=sgs, port_security_enabled=psec, allowed_address_pairs=pairs,
                    vnic_type=vnic_type, host_id=host_id, name=name, description=description,
                    tags=list(tags or []), created_for_device=created_for_device, state="DOWN",
                    extra_dhcp_opts=merge_dhcp_opts([], extra_dhcp_opts or []))
        self.ports[port.id] = port
        self._own("ports", port)
        self._index_port(port)
        if host_id:
            self._enter(port, "BINDING")
        if sgs:
            self._emit("port.create", port)
        return port

    def _allocate_fixed_ips(self, net: Network, fixed_ips: list[dict[str, Any]] | None,
                            mac: str = "") -> list[dict[str, str]]:
        """The port's addresses: with no request, one from the first IPv4 subnet, the EUI-64 address on
        every IPv6 auto-address (SLAAC, DHCPv6-stateless) subnet and one from the first other IPv6
        subnet, as Neutron's IPAM gives them."""
        out: list[dict[str, str]] = []
        try:
            if fixed_ips is None:
                seen_versions = set()
                for sid in net.subnets:
                    sn = self.subnets.get(sid)
                    if sn is None:
                        continue
                    if is_auto_address(sn) and mac:
                        out.append({"subnet_id": sn.id, "ip_address": self._claim_eui64(sn, mac)})
                        continue
                    if sn.ip_version in seen_versions:
                        continue
                    seen_versions.add(sn.ip_version)
                    sn2, ip = self._allocate_on_network(net, sn.id, None)
                    out.append({"subnet_id": sn2.id, "ip_address": ip})
                return out
            if len(fixed_ips) > MAX_FIXED_IPS:
                raise invalid(f"Exceeded maximum amount of fixed ips per port ({MAX_FIXED_IPS}).")
            for spec in fixed_ips:
                auto = self.subnets.get(spec.get("subnet_id") or "")
                if auto is not None and auto.network_id == net.id and is_auto_address(auto) and mac \
                        and not spec.get("ip_address"):
                    out.append({"subnet_id": auto.id, "ip_address": self._claim_eui64(auto, mac)})
                    continue
                sn, ip = self._allocate_on_network(net, spec.get("subnet_id"), spec.get("ip_address"))
                out.append({"subnet_id": sn.id, "ip_address": ip})
            return out
        except ApiError:
            for f in out:
                self._release_ip(f["subnet_id"], f["ip_address"])
            raise

    def _claim_eui64(self, sn: Any, mac: str) -> str:
        ip = eui64(sn.cidr, mac)
        pool = self._pools.get(sn.id)
        if pool is not None:
            if int(ipaddress.ip_address(ip)) in pool.used:
                raise ApiError(409, f"Unable to complete operation for network {sn.network_id}. The IP address "
                                    f"{ip} is in use.", code="IpAddressInUse")
            pool.claim(int(ipaddress.ip_address(ip)))
        return ip

    def _index_port(self, port: Port) -> None:
        self._macs.add(port.mac_address)
        self._net_ports.setdefault(port.network_id, {})[port.id] = None
        for f in port.fixed_ips:
            self._subnet_ports[f["subnet_id"]] = self._subnet_ports.get(f["subnet_id"], 0) + 1
            self._ip_port[(port.network_id, f["ip_address"])] = port.id
            pool = self._pools.get(f["subnet_id"])
            if pool is not None:
                pool.claim(int(ipaddress.ip_address(f["ip_address"])))
        if port.device_id:
            self._device_ports.setdefault(port.device_id, {})[port.id] = None
        for sid in port.security_groups:
            self._sg_ports.setdefault(sid, {})[port.id] = None

    def _unindex_port(self, port: Port) -> None:
        self._macs.discard(port.mac_address)
        net_ports = self._net_ports.get(port.network_id)
        if net_ports is not None:
            net_ports.pop(port.id, None)
            if not net_ports:
                del self._net_ports[port.network_id]
        self._unindex_ips(port)
        if port.device_id:
            dev = self._device_ports.get(port.device_id)
            if dev is not None:
                dev.pop(port.id, None)
                if not dev:
                    del self._device_ports[port.device_id]
        for sid in port.security_groups:
            members = self._sg_ports.get(sid)
            if members is not None:
                members.pop(port.id, None)

    def _unindex_ips(self, port: Port) -> None:
        for f in port.fixed_ips:
            n = self._subnet_ports.get(f["subnet_id"], 0) - 1
            if n > 0:
                self._subnet_ports[f["subnet_id"]] = n
            else:
                self._subnet_ports.pop(f["subnet_id"], None)
            if self._ip_port.get((port.network_id, f["ip_address"])) == port.id:
                del self._ip_port[(port.network_id, f["ip_address"])]
            self._release_ip(f["subnet_id"], f["ip_address"])

    def update_port(self, project_id: str, port_id: str, changes: dict[str, Any]) -> Port:
        port = self.get_port(project_id, port_id)
        sg_changed = False
        psec = changes.get("port_security_enabled", port.port_security_enabled)
        if "security_groups" in changes:
            new_sgs: list[str] | None = self._checked_groups(project_id, changes.pop("security_groups") or [], psec)
        else:
            new_sgs = None
            if not psec and port.security_groups:
                raise ApiError(409, f"Port {port.id} has security groups: disable port security only together "
                                    "with removing them.", code="PortSecurityPortHasSecurityGroup")
        if "extra_dhcp_opts" in changes:
            port.extra_dhcp_opts = merge_dhcp_opts(port.extra_dhcp_opts, changes.pop("extra_dhcp_opts") or [])
        if "allowed_address_pairs" in changes:
            pairs = changes.pop("allowed_address_pairs") or []
            if pairs and not psec:
                raise ApiError(409, "Port Security must be enabled in order to have allowed address pairs on a "
                                    "port.", code="AddressPairAndPortSecurityRequired")
            port.allowed_address_pairs = [{"ip_address": p["ip_address"],
                                           "mac_address": p.get("mac_address") or port.mac_address}
                                          for p in pairs]
        if "fixed_ips" in changes:
            net = self.networks[port.network_id]
            wanted = changes.pop("fixed_ips") or []
            keep = [f for f in port.fixed_ips if any(w.get("ip_address") == f["ip_address"] and
                                                     w.get("subnet_id", f["subnet_id"]) == f["subnet_id"]
                                                     for w in wanted)]
            fresh = [w for w in wanted if not any(w.get("ip_address") == f["ip_address"] for f in keep)]
            old = port.fixed_ips
            dropped = [f for f in old if f not in keep]
            self._unindex_ips_list(port, dropped)
            try:
                added = self._allocate_fixed_ips(net, fresh)
            except ApiError:
                self._reindex_ips_list(port, dropped)
                raise
            port.fixed_ips = keep + added
            self._reindex_ips_list(port, added)
            sg_changed = sg_changed or (bool(port.security_groups) and port.fixed_ips != old)
        if "mac_address" in changes:
            mac = changes.pop("mac_address").lower()
            if mac != port.mac_address:
                if mac in self._macs:
                    raise ApiError(409, f"Unable to complete operation for network {port.network_id}. The mac "
                                        f"address {mac} is in use.", code="MacAddressInUse")
                self._macs.discard(port.mac_address)
                self._macs.add(mac)
                port.mac_address = mac
        if "device_id" in changes:
            dev = changes.pop("device_id")
            if dev != port.device_id:
                if port.device_id:
                    self._device_ports.get(port.device_id, {}).pop(port.id, None)
                port.device_id = dev
                if dev:
                    self._device_ports.setdefault(dev, {})[port.id] = None
        if "host_id" in changes:
            host = changes.pop("host_id")
            if host and not port.host_id:
                port.host_id = host
                self._enter(port, "BINDING")
            elif not host and port.host_id:
                port.host_id = ""
                self._enter(port, "DOWN")
            else:
                port.host_id = host
        for k, v in changes.items():
            setattr(port, k, v)
        if new_sgs is not None and new_sgs != port.security_groups:
            for sid in port.security_groups:
                self._sg_ports.get(sid, {}).pop(port.id, None)
            port.security_groups = new_sgs
            for sid in new_sgs:
                self._sg_ports.setdefault(sid, {})[port.id] = None
            sg_changed = True
        port.touch()
        if sg_changed:
            self._emit("port.update", port)
        return port

    def _unindex_ips_list(self, port: Port, ips: list[dict[str, str]]) -> None:
        saved = port.fixed_ips
        port.fixed_ips = ips
        self._unindex_ips(port)
        port.fixed_ips = saved

    def _reindex_ips_list(self, port: Port, ips: list[dict[str, str]]) -> None:
        for f in ips:
            self._subnet_ports[f["subnet_id"]] = self._subnet_ports.get(f["subnet_id"], 0) + 1
            self._ip_port[(port.network_id, f["ip_address"])] = port.id
            pool = self._pools.get(f["subnet_id"])
            if pool is not None:
                pool.claim(int(ipaddress.ip_address(f["ip_address"])))
                pool.freed.discard(int(ipaddress.ip_address(f["ip_address"])))

    def delete_port(self, project_id: str, port_id: str) -> None:
        port = self.get_port(project_id, port_id)
        if port.device_owner == "network:router_interface":
            raise ApiError(409, f"Port {port.id} cannot be deleted directly via the port API: has device owner "
                                "network:router_interface.", code="ServicePortInUse")
        self._delete_port(port)

    def _delete_port(self, port: Port) -> None:
        for fip in self.floatingips_of_port(port.id):
            self._disassociate(fip)
        self._port_fips.pop(port.id, None)
        self._unindex_port(port)
        self._disown("ports", port)
        del self.ports[port.id]
        if port.due_at is not None:
            self.region.twin.scheduler.cancel(port)
        port.removed = True
        if port.security_groups:
            self._emit("port.delete", port)

    def _enter(self, port: Port, state: str) -> None:
        life = self.region.cloud.lifecycles.get("port")
        if life is None:
            port.state = "ACTIVE" if state == "BINDING" else state
            return
        if port.due_at is not None:
            self.region.twin.scheduler.cancel(port)
        self.region.twin.scheduler.enter(port, life, state, self.region.placement("", port.project_id),
                                         self._port_entered)

    def _port_entered(self, port: Any, state: str, message: str) -> None:
        if state == "DELETED" and port.id in self.ports:
            self._delete_port(port)
