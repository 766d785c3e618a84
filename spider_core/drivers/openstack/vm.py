"""VM handler: Nova servers, their Neutron ports and floating IPs.

Start: resolve image and flavor (by name or id), boot on the VPC's network (on a port made on the
requested subnet when the network has several), poll the server with raw GETs until ACTIVE (ERROR ->
DriverError with the server's fault), then give its port a floating IP from the external network.

Reads: Spider's VM list asks for every VM at once (a get per MetaDB row). Concurrent gets coalesce: a
batch of at least ``LIST_BATCH_MIN`` servers is read with one paged ``/servers/detail`` (plus one port
and one floating-IP list for ``get_vm``) instead of three calls per VM; smaller batches keep one GET per
server, which is cheaper when the project holds many more servers than are asked for.

Control: Nova answers 409 to an action in the wrong state, and CB-Spider's scripts send each action
twice back to back. So an action whose target state the server is already in, or moving to, returns the
transitional status without a call; an action that meets another pending transition waits (bounded)
for it to settle first.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

from spider_core.drivers.base import VMHandler
from spider_core.drivers.coalesce import Coalescer
from spider_core.drivers.openstack.catalog import all_flavors, all_images, find_flavor, find_image
from spider_core.drivers.openstack.mapping import describe, described, is_settled, task_state, vm_status
from spider_core.calllog import RT_VM
from spider_core.drivers.openstack.session import (OpenStackError, OpenStackNotFound, OsSession, status_of, wait_until)
from spider_core.drivers.openstack.vpc import external_network
from spider_core.errors import DriverError, DriverNotFound
from spider_core.model import IID, KeyValue, NICInfo, VMAction, VMInfo, VMReqInfo, VMStatus, VMStatusInfo

VM_USER = "cb-user"
# CB-Spider's OpenStack driver sends this cloud-config with every Linux VM (VMHandler.StartVM)
CLOUD_INIT = """#cloud-config
users:
  - name: {{username}}
    ssh-authorized-keys:
      - {{public_key}}
    sudo: ['ALL=(ALL) NOPASSWD:ALL']
    groups: sudo
    shell: /bin/bash
runcmd:
  - sed -i -e '$aAllowUsers {{username}}' /etc/ssh/sshd_config
  - restart ssh
"""
BOOT_TIMEOUT = 600.0
SETTLE_TIMEOUT = 120.0
POLL_INTERVAL = 0.5
EXPECT_WINDOW = 30.0  # how long an issued suspend/resume counts as pending if the cloud shows no task
LIST_BATCH_MIN = 8    # concurrent gets of at least this many servers are read with one paged list


def is_windows(image: dict[str, Any]) -> bool:
    """A Glance image of Windows (``os_type``, or ``os_distro``/the name saying so), as CB-Spider tells."""
    text = " ".join(str(image.get(k) or "") for k in ("os_type", "os_distro", "name")).lower()
    return "windows" in text


def vm_not_found(server_id: str) -> DriverNotFound:
    return OpenStackNotFound(f"itemNotFound: Instance {server_id} could not be found.", error_type="itemNotFound")


def _action_body(action: str) -> dict[str, Any]:
    if action == "reboot":
        return {"reboot": {"type": "SOFT"}}
    return {action: None}


def data_disks(srv: dict[str, Any]) -> list[IID]:
    """The server's attached volumes; a volume-booted server's (no image) first volume is its root."""
    volumes = [v["id"] for v in srv.get("os-extended-volumes:volumes_attached") or [] if v.get("id")]
    if not srv.get("image") and volumes:
        volumes = volumes[1:]
    return [IID("", v) for v in volumes]


class OsVmHandler(VMHandler):
    def __init__(self, session: OsSession, *, boot_timeout: float = BOOT_TIMEOUT,
                 settle_timeout: float = SETTLE_TIMEOUT, poll_interval: float = POLL_INTERVAL) -> None:
        self.s = session
        self.boot_timeout = boot_timeout
        self.settle_timeout = settle_timeout
        self.poll_interval = poll_interval
        # server id -> (steady status the last suspend/resume leads to, monotonic deadline)
        self._expect: dict[str, tuple[str, float]] = {}
        self._labels: dict[str, str] = {}  # server id -> Spider name, for call-log records of a batch
        self._get_server = Coalescer(self._fetch_servers, vm_not_found, max_inflight=4, max_batch=200)
        self._get_nics = Coalescer(self._fetch_nics, vm_not_found, max_inflight=4, max_batch=200)

    # ---- reads
    async def _server(self, iid: IID) -> dict[str, Any]:
        if not iid.system_id:
            raise vm_not_found(iid.name_id)
        try:
            return (await self.s.call(RT_VM, iid.name_id, "compute", "GET", f"/servers/{iid.system_id}"))["server"]
        except OpenStackError as exc:
            if status_of(exc) == 400:
                raise vm_not_found(iid.system_id) from None
            raise

    async def _fetch_servers(self, ids: list[str]) -> dict[str, object]:
        if len(ids) < LIST_BATCH_MIN:
            got = await asyncio.gather(*(self._server(IID(self._labels.get(i, i), i)) for i in ids),
                                       return_exceptions=True)
            return dict(zip(ids, got))
        wanted = set(ids)
        return {srv["id"]: srv for srv in await self._servers() if srv.get("id") in wanted}

    async def _nics_of(self, server_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        name = self._labels.get(server_id, server_id)
        ports = await self._ports(server_id, name)
        return ports, await self._fips([p["id"] for p in ports], name)

    async def _fetch_nics(self, ids: list[str]) -> dict[str, object]:
        """server id -> (its ports, floating IPs covering them)."""
        if len(ids) < LIST_BATCH_MIN:
            got = await asyncio.gather(*(self._nics_of(i) for i in ids), return_exceptions=True)
            return dict(zip(ids, got))
        ports, fips = await asyncio.gather(self._all_ports(), self._all_fips())
        by_server: dict[str, list[dict[str, Any]]] = {}
        for p in ports:
            by_server.setdefault(p.get("device_id", ""), []).append(p)
        return {i: (by_server.get(i, []), fips) for i in ids}

    async def _read(self, coalescer: Coalescer, iid: IID) -> Any:
        """One server's data through a coalescer (its name kept for the call log while it waits)."""
        if not iid.system_id:
            raise vm_not_found(iid.name_id)
        self._labels[iid.system_id] = iid.name_id
        try:
            return await coalescer.get(iid.system_id)
        finally:
            self._labels.pop(iid.system_id, None)

    async def _ports(self, server_id: str, name: str) -> list[dict[str, Any]]:
        ports = await self.s.list_all(RT_VM, name, "network", f"/ports?device_id={server_id}", "ports")
        return [p for p in ports if p.get("device_id") == server_id]

    async def _fips(self, port_ids: list[str], name: str) -> list[dict[str, Any]]:
        if not port_ids:
            return []
        if len(port_ids) == 1:
            fips = await self.s.list_all(RT_VM, name, "network", f"/floatingips?port_id={port_ids[0]}",
                                         "floatingips")
        else:
            fips = await self._all_fips(name)
        return [f for f in fips if f.get("port_id") in port_ids]

    async def _all_fips(self, name: str = "") -> list[dict[str, Any]]:
        project = await self.s.project_id()
        query = f"?project_id={project}" if project else ""
        return await self.s.list_all(RT_VM, name, "network", f"/floatingips{query}", "floatingips")

    async def _all_ports(self, name: str = "") -> list[dict[str, Any]]:
        project = await self.s.project_id()
        query = f"?project_id={project}" if project else ""
        ports = await self.s.list_all(RT_VM, name, "network", f"/ports{query}", "ports")
        return [p for p in ports if str(p.get("device_owner") or "").startswith("compute:")]

    # ---- mapping
    def effective_status(self, server: dict[str, Any]) -> VMStatus:
        """Nova's status, with a just-issued suspend/resume counted as pending on a cloud that shows
        no task state yet."""
        status = vm_status(server)
        exp = self._expect.get(server.get("id", ""))
        if exp is None:
            return status
        target, deadline = exp
        steady = str(server.get("status", "")).upper()
        if steady == target or time.monotonic() > deadline or task_state(server) or steady == "ERROR":
            self._expect.pop(server.get("id", ""), None)
            return status
        return VMStatus.SUSPENDING if target == "SUSPENDED" else VMStatus.RESUMING

    def _settled(self, server: dict[str, Any]) -> bool:
        return is_settled(server) and self.effective_status(server) == vm_status(server)

    async def _info(self, srv: dict[str, Any], ports: list[dict[str, Any]], fips: list[dict[str, Any]],
                    label: str) -> VMInfo:
        flavor = srv.get("flavor") or {}
        spec = flavor.get("original_name") or ""
        disk = flavor.get("disk")
        if not spec and flavor.get("id"):
            by_id = {str(f.get("id")): f for f in await all_flavors(self.s, label)}
            f = by_id.get(str(flavor["id"]))
            spec = f.get("name", "") if f else str(flavor["id"])
            disk = f.get("disk") if f else disk
        image = srv.get("image") or {}
        image_id = image.get("id", "") if isinstance(image, dict) else ""
        image_os = ""
        if image_id:
            img = next((i for i in await all_images(self.s, label) if i.get("id") == image_id), None)
            image_os = str((img or {}).get("os_type") or "")
        fip_by_port = {f.get("port_id"): f.get("floating_ip_address", "") for f in fips}
        nics: list[NICInfo] = []
        ports = sorted(ports, key=lambda p: p.get("created_at", "") or "")
        for i, p in enumerate(ports):
            ips = [ip.get("ip_address", "") for ip in p.get("fixed_ips") or [] if ip.get("ip_address")]
            pub = [fip_by_port[p["id"]]] if fip_by_port.get(p["id"]) else []
            subnet = (p.get("fixed_ips") or [{}])[0].get("subnet_id", "")
            nics.append(NICInfo(iid=IID("", p["id"]), device_index=i, private_ips=ips, public_ips=pub,
                                mac_address=p.get("mac_address", ""), subnet_iid=IID("", subnet)))
        first = ports[0] if ports else {}
        private_ip = nics[0].private_ips[0] if nics and nics[0].private_ips else ""
        if not private_ip:  # no port visible: Nova's address list
            for addrs in (srv.get("addresses") or {}).values():
                for a in addrs:
                    if a.get("OS-EXT-IPS:type", "fixed") == "fixed" and a.get("version", 4) == 4:
                        private_ip = private_ip or a.get("addr", "")
        public_ip = next((fip_by_port[p["id"]] for p in ports if fip_by_port.get(p["id"])), "")
        if not public_ip:
            for addrs in (srv.get("addresses") or {}).values():
                for a in addrs:
                    if a.get("OS-EXT-IPS:type") == "floating":
                        public_ip = public_ip or a.get("addr", "")
        sgs: list[IID] = []
        for p in ports:
            for g in p.get("security_groups") or []:
                if g not in [s.system_id for s in sgs]:
                    sgs.append(IID("", g))
        if not sgs:
            sgs = [IID(g.get("name", ""), g.get("name", "")) for g in srv.get("security_groups") or []]
        windows = image_os.lower() == "windows"
        key = srv.get("key_name") or ""
        kvs = [KeyValue("Status", str(srv.get("status", ""))),
               KeyValue("TaskState", task_state(srv) or "-"),
               KeyValue("PowerState", str(srv.get("OS-EXT-STS:power_state", "")))]
        if flavor.get("id"):
            kvs.append(KeyValue("FlavorId", str(flavor["id"])))
        return VMInfo(
            iid=IID(srv.get("name", ""), srv["id"]),
            start_time=str(srv.get("OS-SRV-USG:launched_at") or srv.get("created") or ""),
            region=self.s.region, zone=str(srv.get("OS-EXT-AZ:availability_zone") or self.s.zone),
            image_iid=IID(image_id, image_id), vmspec_name=spec,
            vpc_iid=IID("", first.get("network_id", "")), subnet_iid=nics[0].subnet_iid if nics else IID(),
            security_group_iids=sgs, keypair_iid=IID(key, key),
            root_disk_type="default", root_disk_size=str(disk) if disk not in (None, "") else "",
            root_device_name="/dev/vda", vm_boot_disk="/dev/vda", vm_block_disk="/dev/vda",
            data_disk_iids=data_disks(srv),
            vm_user_id="Administrator" if windows else VM_USER,
            nics=nics, network_interface=nics[0].iid.system_id if nics else "",
            public_ip=public_ip, public_ips=[public_ip] if public_ip else [],
            private_ip=private_ip, private_ips=[private_ip] if private_ip else [],
            platform="Windows" if windows else "Linux/UNIX",
            ssh_access_point=f"{public_ip}:{3389 if windows else 22}" if public_ip else "",
            key_values=kvs)

    # ---- start
    async def _wait_active(self, server_id: str, name: str) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            srv = (await self.s.call(RT_VM, name, "compute", "GET", f"/servers/{server_id}"))["server"]
            status = str(srv.get("status", "")).upper()
            if status == "ERROR":
                fault = srv.get("fault") or {}
                raise OpenStackError(f"VM {name} failed to boot (ERROR): "
                                     f"{fault.get('message') or 'no fault message'}", error_type="ServerError")
            return srv if status == "ACTIVE" else None

        return await wait_until(check, timeout=self.boot_timeout, interval=self.poll_interval,
                                max_interval=max(self.poll_interval, 1.0), what=f"VM {name} to become ACTIVE")

    async def start_vm(self, req: VMReqInfo) -> VMInfo:
        name = req.iid.name_id
        root_size = req.root_disk_size.strip()
        root_size = "" if root_size.lower() == "default" else root_size
        if req.image_type == "MyImage":  # a MyImage is a Glance image of this project: its id
            image = await self.s.call(RT_VM, name, "image", "GET", f"/images/{req.image_iid.system_id}")
        else:
            image = await find_image(self.s, req.image_iid.system_id or req.image_iid.name_id, name)
        flavor = await find_flavor(self.s, req.vmspec_name, name)
        net_id = req.vpc_iid.system_id
        if not net_id:
            raise OpenStackNotFound(f"NetworkNotFound: VPC {req.vpc_iid.name_id} has no network id")
        net = (await self.s.call(RT_VM, name, "network", "GET", f"/networks/{net_id}"))["network"]
        sg_ids = [g.system_id for g in req.security_group_iids if g.system_id]
        subnet_id = req.subnet_iid.system_id
        own_port = ""
        server: dict[str, Any] = {"name": name, "imageRef": image["id"], "flavorRef": str(flavor["id"])}
        if root_size:
            server.update(await self._boot_volume(image, root_size, req.root_disk_type, name))
        if subnet_id and len(net.get("subnets") or []) > 1:
            port = (await self.s.call(RT_VM, name, "network", "POST", "/ports", {"port": {
                "network_id": net_id, "name": f"{name}-nic0", "fixed_ips": [{"subnet_id": subnet_id}],
                "security_groups": sg_ids, "description": describe(Owner="spidertwin-vm")}}))["port"]
            own_port = port["id"]
            server["networks"] = [{"port": own_port}]
        else:
            server["networks"] = [{"uuid": net_id}]
            if sg_ids:
                server["security_groups"] = [{"name": g} for g in sg_ids]
        key = req.keypair_iid.system_id or req.keypair_iid.name_id
        if key:
            server["key_name"] = key
            if not is_windows(image):
                server["user_data"] = await self._cloud_init(key, name)
        zone = req.zone or self.s.zone
        if zone:
            server["availability_zone"] = zone
        meta = {kv.key[:255]: kv.value[:255] for kv in req.tags if kv.key}
        if meta:
            server["metadata"] = meta
        try:
            created = (await self.s.call(RT_VM, name, "compute", "POST", "/servers", {"server": server}))["server"]
        except DriverError:
            if own_port:
                await self._delete_port(own_port, name)
            raise
        server_id = created["id"]
        try:
            srv = await self._wait_active(server_id, name)
            ports = await self._ports(server_id, name)
            fips = await self._attach_public_ip(ports, name)
        except DriverError:
            await self._cleanup_failed(server_id, own_port, name)
            raise
        info = await self._info(srv, ports, fips, name)
        info.iid = IID(name, server_id)
        info.vpc_iid = IID(req.vpc_iid.name_id, info.vpc_iid.system_id or net_id)
        info.subnet_iid = IID(req.subnet_iid.name_id, info.subnet_iid.system_id or subnet_id)
        info.image_iid = IID(req.image_iid.name_id or image["id"], image["id"])
        info.vmspec_name = req.vmspec_name or info.vmspec_name
        info.tags = list(req.tags)
        return info

    async def _boot_volume(self, image: dict[str, Any], size: str, disk_type: str, name: str) -> dict[str, Any]:
        """Boot from a new Cinder volume of ``size`` GB made from the image (CB-Spider's OpenStack driver
        does this for a RootDiskSize); a cloud without a volume service cannot."""
        try:
            gb = int(size)
        except ValueError:
            raise DriverError(f"{size} is not a valid Root Disk Size: a whole number of GB") from None
        try:
            await self.s.call(RT_VM, name, "volume", "GET", "/types")
        except DriverError as exc:
            raise DriverError(f"RootDiskSize needs a volume service (Cinder) to boot from a volume; this cloud "
                              f"has none ({exc.message})") from None
        minimum = int(image.get("min_disk") or 0)
        if gb < minimum:
            raise DriverError(f"{size} is not a valid Root Disk Size: image {image.get('name')} needs at least "
                              f"{minimum} GB")
        bdm: dict[str, Any] = {"boot_index": 0, "uuid": image["id"], "source_type": "image",
                               "destination_type": "volume", "volume_size": gb, "delete_on_termination": True}
        if disk_type and disk_type.lower() != "default":
            bdm["volume_type"] = disk_type
        return {"block_device_mapping_v2": [bdm]}

    async def _cloud_init(self, key: str, name: str) -> str:
        """CB-Spider's user-data for a Linux VM: cloud-init makes ``cb-user`` with the keypair's public
        key and sudo, so ``ssh -i <key> cb-user@<PublicIP>`` works on any image, as on CB-Spider."""
        kp = (await self.s.call(RT_VM, name, "compute", "GET", f"/os-keypairs/{key}"))["keypair"]
        text = CLOUD_INIT.replace("{{username}}", VM_USER).replace("{{public_key}}", kp.get("public_key", "").strip())
        return base64.b64encode(text.encode()).decode()

    async def _attach_public_ip(self, ports: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
        if not ports:
            raise OpenStackError(f"VM {name} is ACTIVE but has no port: no floating IP can be attached",
                                 error_type="PortNotFound")
        existing = await self._fips([p["id"] for p in ports], name)
        if existing:
            return existing
        ext = await external_network(self.s, name)
        if not ext:
            return []  # a cloud without an external network: the VM has no public IP
        port = sorted(ports, key=lambda p: p.get("created_at", "") or "")[0]
        fip = (await self.s.call(RT_VM, name, "network", "POST", "/floatingips", {"floatingip": {
            "floating_network_id": ext, "port_id": port["id"],
            "description": describe(Owner="spidertwin-vm")}}))["floatingip"]
        return [fip]

    async def _delete_port(self, port_id: str, name: str) -> None:
        try:
            await self.s.call(RT_VM, name, "network", "DELETE", f"/ports/{port_id}")
        except DriverError:
            pass

    async def _cleanup_failed(self, server_id: str, own_port: str, name: str) -> None:
        try:
            for f in await self._fips([p["id"] for p in await self._ports(server_id, name)], name):
                await self.s.call(RT_VM, name, "network", "DELETE", f"/floatingips/{f['id']}")
        except DriverError:
            pass
        try:
            await self.s.call(RT_VM, name, "compute", "DELETE", f"/servers/{server_id}")
        except DriverError:
            pass
        if own_port:
            await self._delete_port(own_port, name)

    # ---- control
    async def _settle(self, iid: IID) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            srv = await self._server(iid)
            return srv if self._settled(srv) else None

        return await wait_until(check, timeout=self.settle_timeout, interval=self.poll_interval,
                                max_interval=max(self.poll_interval, 1.0),
                                what=f"VM {iid.name_id} to finish its pending transition")

    async def control_vm(self, iid: IID, action: VMAction) -> VMStatus:
        action = VMAction(action)
        srv = await self._server(iid)
        for _ in range(3):
            status = self.effective_status(srv)
            steady = str(srv.get("status", "")).upper()
            if status == VMStatus.TERMINATING or steady in ("DELETED", "SOFT_DELETED"):
                raise DriverError(f"cannot {action.value} VM {iid.name_id}: it is being terminated")
            if action == VMAction.SUSPEND:
                if status in (VMStatus.SUSPENDING, VMStatus.SUSPENDED):
                    return VMStatus.SUSPENDING
                call, target = "suspend", "SUSPENDED"
            elif action == VMAction.RESUME:
                if status == VMStatus.RESUMING or (status == VMStatus.RUNNING and self._settled(srv)):
                    return VMStatus.RESUMING
                call = {"SHUTOFF": "os-start", "PAUSED": "unpause", "SHELVED": "unshelve",
                        "SHELVED_OFFLOADED": "unshelve"}.get(steady, "resume")
                target = "ACTIVE"
            else:
                if status == VMStatus.REBOOTING:
                    return VMStatus.REBOOTING
                if status in (VMStatus.SUSPENDED, VMStatus.SUSPENDING):
                    raise DriverError(f"reboot not supported in {status.value.upper()} status")
                call, target = "reboot", ""
            if not self._settled(srv):
                srv = await self._settle(iid)
                continue
            if action == VMAction.SUSPEND and steady != "ACTIVE":
                raise DriverError(f"cannot suspend VM {iid.name_id} in {steady} status")
            if action == VMAction.REBOOT and steady != "ACTIVE":
                raise DriverError(f"cannot reboot VM {iid.name_id} in {steady} status")
            try:
                await self.s.call(RT_VM, iid.name_id, "compute", "POST", f"/servers/{iid.system_id}/action",
                                  _action_body(call), api=f"POST compute/servers/action:{call}")
            except OpenStackError as exc:
                if status_of(exc) != 409:
                    raise
                srv = await self._settle(iid)  # a transition we did not see: wait it out, decide again
                continue
            if target:
                self._expect[iid.system_id] = (target, time.monotonic() + EXPECT_WINDOW)
            return {VMAction.SUSPEND: VMStatus.SUSPENDING, VMAction.RESUME: VMStatus.RESUMING,
                    VMAction.REBOOT: VMStatus.REBOOTING}[action]
        raise DriverError(f"cannot {action.value} VM {iid.name_id}: it keeps changing state")

    # ---- terminate
    async def terminate_vm(self, iid: IID) -> VMStatus:
        srv = await self._server(iid)
        name = iid.name_id
        ports = await self._ports(srv["id"], name)
        for f in await self._fips([p["id"] for p in ports], name):
            if described(f.get("description")).get("Owner") != "spidertwin-vm":
                continue  # a Public IP the user manages: Neutron disassociates it with the port
            try:
                await self.s.call(RT_VM, name, "network", "DELETE", f"/floatingips/{f['id']}")
            except DriverNotFound:
                pass
        await self.s.call(RT_VM, name, "compute", "DELETE", f"/servers/{srv['id']}")
        self._expect.pop(srv["id"], None)
        for p in ports:  # ports this driver made (multi-subnet VPCs) do not go with the server
            if described(p.get("description")).get("Owner") == "spidertwin-vm":
                await self._delete_port(p["id"], name)
        return VMStatus.TERMINATING

    # ---- status and lists
    async def get_vm_status(self, iid: IID) -> VMStatus:
        return self.effective_status(await self._read(self._get_server, iid))

    async def _servers(self) -> list[dict[str, Any]]:
        return await self.s.list_all(RT_VM, "", "compute", "/servers/detail", "servers")

    async def list_vm_status(self) -> list[VMStatusInfo]:
        return [VMStatusInfo(IID(s.get("name", ""), s["id"]), self.effective_status(s).value)
                for s in await self._servers()]

    async def get_vm(self, iid: IID) -> VMInfo:
        srv, (ports, fips) = await asyncio.gather(self._read(self._get_server, iid), self._read(self._get_nics, iid))
        return await self._info(srv, ports, fips, iid.name_id)

    async def list_vm(self) -> list[VMInfo]:
        servers, ports, fips = await asyncio.gather(self._servers(), self._all_ports(), self._all_fips())
        by_server: dict[str, list[dict[str, Any]]] = {}
        for p in ports:
            by_server.setdefault(p.get("device_id", ""), []).append(p)
        return [await self._info(s, by_server.get(s["id"], []), fips, "") for s in servers]

    async def list_iid(self) -> list[IID]:
        return [IID(s.get("name", ""), s["id"]) for s in await self._servers()]
