"""Fault injection (placeholder interface; the full engine follows)."""

from __future__ import annotations

from typing import Any

DISTRIBUTIONS = ("fixed", "uniform", "normal", "lognormal", "exponential", "ramp")


def validate_distribution(spec: dict[str, Any]) -> None:
    kinds = [k for k in spec if k in DISTRIBUTIONS]
    if len(kinds) != 1:
        raise ValueError(f"give exactly one of {', '.join(DISTRIBUTIONS)}")


class FaultEngine:
    def __init__(self, twin: Any) -> None:
        self.twin = twin

    def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def before(self, call: Any) -> Any:
        return None

    def zone_check(self, call: Any, zone: str) -> None:
        return None

    def transition_hook(self, placement: Any, kind: str, obj: Any, state: str) -> Any:
        return None
