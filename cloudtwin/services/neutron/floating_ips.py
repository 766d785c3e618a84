"""Neutron floating IPs of one region (a part of ``NeutronState``)."""

from __future__ import annotations

import ipaddress
from typing import Any

from cloudtwin.errors import ApiError
from cloudtwin.services.neutron.resources import Port, FloatingIP


class FloatingIpMethods:
    """Floating IPs: allocation from the public network, association with ports."""

    def _fip_fixed_ip(self, port: Port, fixed_ip_address: str | None, fip: FloatingIP | None) -> str:
        v4 = [f["ip_address"] for f in port.fixed_ips if ipaddress.ip_address(f["ip_address"]).version == 4]
        if fixed_ip_address is not None:
            if fixed_ip_address not in v4:
                raise ApiError(400, f"Bad floatingip request: Port {port.id} does not have fixed ip "
                                    f"{fixed_ip_address}.", code="BadRequest")
            chosen = fixed_ip_address
        else:
            if not v4:
                raise ApiError(400, f"Bad floatingip request: Port {port.id} does not have any IPv4 address "
                                    "to associate a floating IP with.", code="BadRequest")
            chosen = v4[0]
        for other in self.floatingips_of_port(port.id):
            if other is not fip and other.fixed_ip_address == chosen:
                raise ApiError(409, f"Cannot associate floating IP {other.floating_ip_address} ({other.id}) with "
                                    f"port {port.id} using fixed IP {chosen}, as that fixed IP already has a "
                                    f"floating IP on external network {other.floating_network_id}.",
                               code="FloatingIPPortAlreadyAssociated")
        return chosen

    def _associate(self, fip: FloatingIP, port: Port, fixed_ip: str) -> None:
        if fip.port_id and fip.port_id != port.id:
            self._port_fips.get(fip.port_id, {}).pop(fip.id, None)
        fip.port_id = port.id
        fip.fixed_ip_address = fixed_ip
        fip.status = "ACTIVE"
        fip.router_id = self._router_for_network(port.network_id)
        self._port_fips.setdefault(port.id, {})[fip.id] = None
        fip.touch()
        self._emit("floatingip.associate", fip)

    def _disassociate(self, fip: FloatingIP) -> None:
        if fip.port_id:
            self._emit("floatingip.disassociate", fip)
            self._port_fips.get(fip.port_id, {}).pop(fip.id, None)
        fip.port_id = None
        fip.fixed_ip_address = None
        fip.router_id = None
        fip.status = "DOWN"
        fip.touch()

    def update_floatingip(self, project_id: str, fip_id: str, changes: dict[str, Any]) -> FloatingIP:
        fip = self.get_floatingip(project_id, fip_id)
        if "port_id" in changes:
            port_id = changes.pop("port_id")
            fixed = changes.pop("fixed_ip_address", None)
            if port_id is None:
                self._disassociate(fip)
            else:
                port = self.get_port(project_id, port_id)
                fixed = self._fip_fixed_ip(port, fixed, fip)
                self._associate(fip, port, fixed)
        elif "fixed_ip_address" in changes:
            fixed = changes.pop("fixed_ip_address")
            if fip.port_id is None:
                raise ApiError(400, "Bad floatingip request: fixed_ip_address cannot be specified without a "
                                    "port_id.", code="BadRequest")
            port = self.ports[fip.port_id]
            self._associate(fip, port, self._fip_fixed_ip(port, fixed, fip))
        for k, v in changes.items():
            setattr(fip, k, v)
        fip.touch()
        return fip

    def _router_for_network(self, network_id: str) -> str | None:
        for pid in self._net_ports.get(network_id, ()):
            port = self.ports.get(pid)
            if port is not None and port.device_owner == "network:router_interface":
                router = self.routers.get(port.device_id)
                if router is not None and router.external_gateway_info:
                    return router.id
        return None
