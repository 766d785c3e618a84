"""Neutron routers of one region (a part of ``NeutronState``)."""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable

from cloudtwin.errors import ApiError
from cloudtwin.services.neutron.ipam import invalid_attr
from cloudtwin.services.neutron.resources import Router


class RouterMethods:
    """Routers (minimal): enough for a VPC per router with an external gateway."""

    def add_router(self, project_id: str, *, name: str = "", description: str = "", admin_state_up: bool = True,
                   external_gateway_info: dict[str, Any] | None = None, tags: list[str] | None = None,
                   availability_zone_hints: list[str] | None = None) -> Router:
        self.ensure_project(project_id)
        self._check_quota("routers", project_id)
        router = Router(id=self._new_id(), project_id=project_id, name=name, description=description,
                        admin_state_up=admin_state_up, tags=list(tags or []),
                        availability_zone_hints=list(availability_zone_hints or []))
        self.routers[router.id] = router
        self._own("routers", router)
        if external_gateway_info:
            try:
                self._set_gateway(router, external_gateway_info)
            except ApiError:
                self._disown("routers", router)
                del self.routers[router.id]
                raise
        return router

    def _set_gateway(self, router: Router, info: dict[str, Any] | None) -> None:
        for port in self.ports_of_device(router.id):
            if port.device_owner == "network:router_gateway":
                self._delete_port(port)
        router.external_gateway_info = None
        if not info:
            return
        net_id = info.get("network_id")
        if not isinstance(net_id, str):
            raise invalid_attr("external_gateway_info", "'network_id' is required")
        net = self.get_network(router.project_id, net_id)
        if not net.external:
            raise ApiError(400, f"Bad router request: Network {net_id} is not an external network.",
                           code="BadRequest")
        wanted = info.get("external_fixed_ips")
        if wanted is not None and (not isinstance(wanted, list) or not all(
                isinstance(f, dict) and set(f) <= {"subnet_id", "ip_address"} for f in wanted)):
            raise invalid_attr("external_gateway_info", "'external_fixed_ips' is a list of {subnet_id, ip_address}")
        port = self.add_port(self.service_project_id, net.id, fixed_ips=[dict(f) for f in wanted] if wanted else None,
                             security_groups=[], device_id=router.id, device_owner="network:router_gateway",
                             port_security_enabled=False)
        port.state = "ACTIVE"
        router.external_gateway_info = {"network_id": net.id, "enable_snat": bool(info.get("enable_snat", True)),
                                        "external_fixed_ips": [dict(f) for f in port.fixed_ips]}

    def update_router(self, project_id: str, router_id: str, changes: dict[str, Any]) -> Router:
        router = self.get_router(project_id, router_id)
        if "external_gateway_info" in changes:
            self._set_gateway(router, changes.pop("external_gateway_info"))
        for k, v in changes.items():
            setattr(router, k, v)
        router.touch()
        return router

    def delete_router(self, project_id: str, router_id: str) -> None:
        router = self.get_router(project_id, router_id)
        if any(p.device_owner == "network:router_interface" for p in self.ports_of_device(router.id)):
            raise ApiError(409, f"Router {router.id} still has ports", code="RouterInUse")
        self._set_gateway(router, None)
        self._disown("routers", router)
        del self.routers[router.id]
        router.removed = True

    def _check_overlap(self, router: Any, sn: Any) -> None:
        """Neutron refuses a router interface whose subnet overlaps one the router is already on."""
        new = ipaddress.ip_network(sn.cidr)
        for p in self.ports_of_device(router.id):
            if p.device_owner != "network:router_interface":
                continue
            for f in p.fixed_ips:
                other = self.subnets.get(f["subnet_id"])
                if other is not None and other.id != sn.id and new.version == ipaddress.ip_network(other.cidr).version \
                        and new.overlaps(ipaddress.ip_network(other.cidr)):
                    raise ApiError(400, f"Bad router request: Cidr {sn.cidr} of subnet {sn.id} overlaps with cidr "
                                        f"{other.cidr} of subnet {other.id}.", code="BadRequest")

    def add_router_interface(self, project_id: str, router_id: str, *, subnet_id: str | None = None,
                             port_id: str | None = None) -> dict[str, Any]:
        router = self.get_router(project_id, router_id)
        if (subnet_id is None) == (port_id is None):
            raise ApiError(400, "Bad router request: Either subnet_id or port_id must be specified.",
                           code="BadRequest")
        if subnet_id is not None:
            sn = self.get_subnet(project_id, subnet_id)
            for p in self.ports_of_device(router.id):
                if any(f["subnet_id"] == sn.id for f in p.fixed_ips):
                    raise ApiError(400, f"Bad router request: Router already has a port on subnet {sn.id}.",
                                   code="BadRequest")
            if not sn.gateway_ip:
                raise ApiError(400, "Bad router request: Subnet for router interface must have a gateway IP.",
                               code="BadRequest")
            self._check_overlap(router, sn)
            port = self.add_port(project_id, sn.network_id, fixed_ips=[{"subnet_id": sn.id,
                                                                        "ip_address": sn.gateway_ip}],
                                 security_groups=[], device_id=router.id, device_owner="network:router_interface",
                                 port_security_enabled=False)
        else:
            port = self.get_port(project_id, port_id or "")
            if port.device_id:
                raise ApiError(409, f"Port {port.id} is in use by device {port.device_id}.", code="PortInUse")
            if not port.fixed_ips:
                raise ApiError(400, "Bad router request: Router port must have at least one fixed IP.",
                               code="BadRequest")
            port.device_id = router.id
            port.device_owner = "network:router_interface"
            self._device_ports.setdefault(router.id, {})[port.id] = None
        port.state = "ACTIVE"
        router.touch()
        return {"id": router.id, "tenant_id": project_id, "project_id": project_id, "port_id": port.id,
                "network_id": port.network_id, "subnet_id": port.fixed_ips[0]["subnet_id"] if port.fixed_ips else None,
                "subnet_ids": [f["subnet_id"] for f in port.fixed_ips]}

    def remove_router_interface(self, project_id: str, router_id: str, *, subnet_id: str | None = None,
                                port_id: str | None = None) -> dict[str, Any]:
        router = self.get_router(project_id, router_id)
        target = None
        for p in self.ports_of_device(router.id):
            if p.device_owner != "network:router_interface":
                continue
            if (port_id is not None and p.id == port_id) or \
                    (subnet_id is not None and any(f["subnet_id"] == subnet_id for f in p.fixed_ips)):
                target = p
                break
        if target is None:
            what = f"subnet {subnet_id}" if subnet_id else f"port {port_id}"
            raise ApiError(404, f"Router {router.id} does not have an interface with {what}",
                           code="RouterInterfaceNotFoundForSubnet" if subnet_id else "RouterInterfaceNotFound")
        info = {"id": router.id, "tenant_id": project_id, "project_id": project_id, "port_id": target.id,
                "network_id": target.network_id,
                "subnet_id": target.fixed_ips[0]["subnet_id"] if target.fixed_ips else None,
                "subnet_ids": [f["subnet_id"] for f in target.fixed_ips]}
        self._delete_port(target)
        router.touch()
        return info

    # ---- iteration helpers for handlers ---------------------------------------------------------

    def iter_owned(self, table: str, project_id: str) -> Iterable[Any]:
        self.ensure_project(project_id)
        return self.owned(table, project_id)
