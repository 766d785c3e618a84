"""Lifecycle definitions: for each resource kind, the states (and what each shows on the wire), the
timed stages out of a state (delay, jitter, weighted next states, failure) and the API actions that
start one. Data from ``cloudtwin/data/stages.yaml`` with a profile's overrides merged in.

Plain data with no clock: the ``Scheduler`` in ``stages`` is the engine that applies them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import yaml

from cloudtwin.profiles import ProfileError, deep_merge

STAGES_FILE = Path(__file__).with_name("data") / "stages.yaml"
GONE = "DELETED"


@dataclass(frozen=True)
class Stage:
    delay: float
    jitter: float
    next: tuple[tuple[str, float], ...]   # (state, weight)
    fail_probability: float = 0.0
    fail_to: str = "ERROR"
    fail_message: str = ""


@dataclass(frozen=True)
class Action:
    allowed: tuple[str, ...]
    enter: str


@dataclass(frozen=True)
class KindLifecycle:
    kind: str
    states: dict[str, dict[str, Any]]
    stages: dict[str, Stage]
    actions: dict[str, Action]

    def attrs(self, state: str) -> dict[str, Any]:
        return self.states.get(state, {})


class Tracked(Protocol):
    """What the scheduler needs of an object: an id, a state, and a transition counter."""

    id: str
    state: str
    transitions: int


@dataclass(frozen=True)
class Placement:
    """Where an object lives; faults (stuck transitions, AZ outages) match on it."""

    cloud: str
    region: str
    zone: str = ""
    project: str = ""


OnEnter = Callable[[Any, str, str], None]
"""``on_enter(obj, state, message)``: called after a timed transition put ``obj`` in ``state`` (its
next stage is already scheduled). For ``DELETED`` the service removes the object. ``message`` is the
failure text when the transition failed (e.g. a server's ``fault``)."""

TransitionHook = Callable[[Placement, str, Any, str], "tuple[str, str, str] | None"]
"""``hook(placement, kind, obj, from_state) -> ("stuck"|"fail", rule_id, message) | None`` (faults)."""


def _parse_next(value: Any, where: str) -> tuple[tuple[str, float], ...]:
    if isinstance(value, str):
        return ((value, 1.0),)
    if isinstance(value, list) and value:
        out = []
        for alt in value:
            if not isinstance(alt, dict) or "to" not in alt:
                raise ProfileError(f"{where}.next: items need 'to' (and optional 'weight')")
            w = float(alt.get("weight", 1))
            if w < 0:
                raise ProfileError(f"{where}.next: weights must be >= 0")
            out.append((str(alt["to"]), w))
        if sum(w for _, w in out) <= 0:
            raise ProfileError(f"{where}.next: at least one weight must be > 0")
        return tuple(out)
    raise ProfileError(f"{where}.next: a state name or a list of {{to, weight}}")


def build_lifecycles(doc: dict[str, Any], source: str = str(STAGES_FILE)) -> dict[str, KindLifecycle]:
    out: dict[str, KindLifecycle] = {}
    for kind, spec in doc.items():
        where = f"{source}: {kind}"
        if not isinstance(spec, dict):
            raise ProfileError(f"{where}: a mapping with states/stages/actions")
        states = {str(k): dict(v or {}) for k, v in (spec.get("states") or {}).items()}
        stages: dict[str, Stage] = {}
        for state, st in (spec.get("stages") or {}).items():
            w = f"{where}.stages.{state}"
            if not isinstance(st, dict) or "next" not in st:
                raise ProfileError(f"{w}: needs 'next'")
            try:
                delay, jitter = float(st.get("delay", 0)), float(st.get("jitter", 0))
            except (TypeError, ValueError):
                raise ProfileError(f"{w}: delay and jitter are numbers of seconds") from None
            if delay < 0 or jitter < 0:
                raise ProfileError(f"{w}: delay and jitter must be >= 0")
            fail = st.get("fail") or {}
            p = float(fail.get("probability", 0))
            if not 0 <= p <= 1:
                raise ProfileError(f"{w}.fail.probability: between 0 and 1")
            nxt = _parse_next(st["next"], w)
            for target, _ in nxt:
                if target != GONE and target not in states:
                    raise ProfileError(f"{w}.next: unknown state '{target}'")
            stages[str(state)] = Stage(delay, jitter, nxt, p, str(fail.get("to", "ERROR")),
                                       str(fail.get("message", "")))
        actions = {}
        for name, act in (spec.get("actions") or {}).items():
            if not isinstance(act, dict) or "to" not in act:
                raise ProfileError(f"{where}.actions.{name}: needs 'from' and 'to'")
            actions[str(name)] = Action(tuple(act.get("from") or ()), str(act["to"]))
        out[str(kind)] = KindLifecycle(str(kind), states, stages, actions)
    return out


_BUILT: dict[str, dict[str, KindLifecycle]] = {}
_SECTIONS = ("states", "stages", "actions")


def _as_stage_doc(overrides: dict[str, Any]) -> dict[str, Any]:
    """A profile writes ``stages: {server: {BUILD: {delay: 5}}}``; the stage file nests timed stages
    under ``stages``. Both forms are accepted (``server: {stages: ..., actions: ...}`` too)."""
    out: dict[str, Any] = {}
    for kind, spec in overrides.items():
        if not isinstance(spec, dict):
            raise ProfileError(f"stages.{kind}: a mapping of state -> {{delay, jitter, next, fail}}")
        if set(spec) & set(_SECTIONS):
            out[kind] = spec
        else:
            out[kind] = {"stages": spec}
    return out


def load_lifecycles(overrides: dict[str, Any] | None = None) -> dict[str, KindLifecycle]:
    """The built-in stages, with a profile's ``stages:`` overrides merged in (cached: the result is
    immutable, and a twin creates many clouds from few profiles)."""
    key = json.dumps(overrides or {}, sort_keys=True, default=str)
    found = _BUILT.get(key)
    if found is None:
        doc = yaml.load(STAGES_FILE.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        if overrides:
            doc = deep_merge(doc, _as_stage_doc(overrides))
        found = _BUILT[key] = build_lifecycles(doc)
    return found
