"""What Nova remembers about servers besides the servers: instance actions (with their events) and
migrations (resize, cold and live migration, evacuation). Stored in snapshots. No HTTP here."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from cloudtwin.resource import Resource


@dataclass(kw_only=True)
class InstanceAction(Resource):
    """One API action on a server (``os-instance-actions``); ``id`` is the request id."""

    server_id: str = ""
    action: str = ""
    user_id: str = ""
    message: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)   # event, start/finish_time, result, host

    def finish(self, result: str = "Success", host: str = "") -> None:
        now = time.time()
        for ev in self.events:
            if ev.get("finish_time") is None:
                ev["finish_time"] = now
                ev["result"] = result
        if result == "Error":
            self.message = "Error"
        self.updated_at = now


@dataclass(kw_only=True)
class Migration(Resource):
    """A move of a server between hosts (``os-migrations``); ``seq`` is the integer id Nova shows."""

    seq: int = 0
    server_id: str = ""
    user_id: str = ""
    migration_type: str = "migration"     # migration | resize | live-migration | evacuation
    status: str = "pre-migrating"
    source_compute: str = ""
    dest_compute: str = ""
    source_region: str = ""
    dest_region: str = ""
    old_flavor_id: str = ""
    old_flavor: tuple[int, int, int] = (0, 0, 0)     # vcpus, ram, disk: a revert needs no flavor left
    new_flavor_id: str = ""
    source_zone: str = ""
    dest_zone: str = ""
