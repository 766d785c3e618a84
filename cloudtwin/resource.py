"""The base every stored object shares: identity, ownership, timestamps and lifecycle bookkeeping."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(kw_only=True)
class Resource:
    """One object of a virtual cloud. Services subclass it with their own fields.

    ``state`` / ``transitions`` / ``due_at`` / ``due_state`` belong to the stage scheduler
    (``cloudtwin.stages``); ``removed`` marks an object deleted while a transition was pending.
    """

    id: str
    project_id: str
    name: str = ""
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    revision_number: int = 0
    state: str = ""
    transitions: int = 0
    due_at: float | None = None
    due_state: str | None = None
    removed: bool = False

    def touch(self) -> None:
        self.updated_at = time.time()
        self.revision_number += 1
