"""Lifecycle stages in motion: ``Scheduler`` keeps one heap of due transitions for the whole twin and one
task that applies them, so 10,000 servers cost 10,000 heap entries, not 10,000 timers. Randomness
comes from a generator seeded with (twin seed, object id, transition number): a replay under the same
seed takes the same paths no matter how requests interleave. The definitions are in ``lifecycles``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Any

from cloudtwin.background import Background
from cloudtwin.lifecycles import GONE, KindLifecycle, OnEnter, Placement, Tracked, TransitionHook


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    obj: Any = field(compare=False)
    generation: int = field(compare=False)
    target: str = field(compare=False)
    message: str = field(compare=False)
    life: KindLifecycle = field(compare=False)
    placement: Placement = field(compare=False)
    on_enter: OnEnter = field(compare=False)


class Scheduler:
    """Applies timed transitions for every object of every cloud."""

    def __init__(self, *, seed: int = 0, time_scale: float = 1.0,
                 hook: TransitionHook | None = None) -> None:
        self.seed = seed
        self.time_scale = time_scale
        self.hook = hook
        self._heap: list[_Due] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._background = Background("cloudtwin-stages", self._run)
        self.applied = 0

    def rng(self, obj: Tracked) -> random.Random:
        return random.Random(f"{self.seed}/{obj.id}/{obj.transitions}")

    def enter(self, obj: Any, life: KindLifecycle, state: str, placement: Placement,
              on_enter: OnEnter) -> None:
        """Put ``obj`` in ``state`` now and schedule the stage that leaves it, if any."""
        obj.state = state
        obj.transitions += 1
        obj.due_at = None
        obj.due_state = None
        stage = life.stages.get(state)
        if stage is None:
            return
        rng = self.rng(obj)
        verdict = self.hook(placement, life.kind, obj, state) if self.hook else None
        if verdict is not None and verdict[0] == "stuck":
            return
        delay = max(0.0, stage.delay + (rng.uniform(-stage.jitter, stage.jitter) if stage.jitter else 0.0))
        failed = rng.random() < stage.fail_probability
        message = stage.fail_message
        if verdict is not None and verdict[0] == "fail":
            failed, message = True, verdict[2] or stage.fail_message
        if failed:
            target = stage.fail_to
        else:
            states, weights = zip(*stage.next)
            target = states[0] if len(states) == 1 else rng.choices(states, weights)[0]
        self.schedule(obj, life, placement, target, delay * self.time_scale, message if failed else "",
                      on_enter)

    def schedule(self, obj: Any, life: KindLifecycle, placement: Placement, target: str, delay: float,
                 message: str, on_enter: OnEnter) -> None:
        """Move ``obj`` to ``target`` after ``delay`` seconds (also used by snapshot restore)."""
        at = time.monotonic() + delay
        obj.due_at = at
        obj.due_state = target
        heapq.heappush(self._heap, _Due(at, next(self._seq), obj, obj.transitions, target, message, life,
                                        placement, on_enter))
        if self._heap[0].at == at:
            self._wake.set()

    def cancel(self, obj: Any) -> None:
        """Forget ``obj``'s pending transition (it was deleted or moved by an API call)."""
        obj.transitions += 1
        obj.due_at = None
        obj.due_state = None

    def pending(self) -> int:
        return len(self._heap)

    def start(self) -> None:
        self._background.start()

    async def stop(self) -> None:
        await self._background.stop()

    def run_due(self, now: float | None = None) -> int:
        """Apply every transition due by ``now``; returns how many were applied."""
        now = time.monotonic() if now is None else now
        n = 0
        while self._heap and self._heap[0].at <= now:
            due = heapq.heappop(self._heap)
            obj = due.obj
            if obj.transitions != due.generation or getattr(obj, "removed", False):
                continue  # superseded by an API call, or the object is gone
            obj.due_at = None
            if due.target != GONE:
                self.enter(obj, due.life, due.target, due.placement, due.on_enter)
            due.on_enter(obj, due.target, due.message)
            n += 1
        self.applied += n
        return n

    async def _run(self) -> None:
        while True:
            self.run_due()
            timeout = (self._heap[0].at - time.monotonic()) if self._heap else None
            self._wake.clear()
            if timeout is not None and timeout <= 0:
                await asyncio.sleep(0)
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass
