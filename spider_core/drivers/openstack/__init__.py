"""The OpenStack driver (openstacksdk): provider OPENSTACK for a real OpenStack and provider CLOUDTWIN
for the Cloud-Twin emulator, on the same handlers."""

from spider_core.drivers.openstack.driver import CloudTwinDriver, OpenStackDriver

__all__ = ["CloudTwinDriver", "OpenStackDriver"]
