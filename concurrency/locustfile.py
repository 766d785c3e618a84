"""The load templates as a Locust file, for `spider load` and for people who run Locust directly.

    locust -f concurrency/locustfile.py --headless -H http://127.0.0.1:1024 -u 100 -r 100 \\
        --spider-op create --spider-resource vpc --spider-connection mock-config01 --spider-setup

`--spider-resource` picks the user class (VpcUser, SubnetUser, SecurityGroupUser, SecurityRuleUser,
KeyPairUser, VmUser, NlbUser); `--spider-setup` creates the prerequisites at test start and deletes
everything of the run at test stop (`spider load` does both itself, outside Locust, and leaves it off).
Without `--spider-loop` each user does its operation once and the run ends when all N are done.

More than one process or machine is Locust's own master/worker mode; the templates work unchanged
because user indices are tickets handed out by the master (message `spider_ticket`) and completions
are counted there (`spider_done`):

    locust -f concurrency/locustfile.py --master --master-bind-host 0.0.0.0 --expect-workers 4 ...
    locust -f concurrency/locustfile.py --worker --master-host <master>      # on each worker machine
"""
from __future__ import annotations

import itertools
import json
import os
import time
import uuid
from typing import Any

import gevent
from gevent.event import AsyncResult
from locust import events
from locust.runners import LocalRunner, MasterRunner, WorkerRunner

from concurrency import templates
from concurrency.plan import OPS, RESOURCE_OPS, VM_ACTIONS, LoadPlan


# one concrete user class per resource (VpcUser, SubnetUser, ...); the init hook keeps the one that runs
CONCRETE = {resource: type(base.__name__, (base,), {"abstract": False, "__module__": __name__})
            for resource, base in templates.TEMPLATES.items()}
globals().update({cls.__name__: cls for cls in CONCRETE.values()})


def _env(name: str, default: str = "") -> str:
    return os.environ.get(f"SPIDER_LOAD_{name.upper()}", default)


@events.init_command_line_parser.add_listener
def add_arguments(parser: Any) -> None:
    """Custom arguments (also settable as SPIDER_LOAD_<NAME> environment variables)."""
    g = parser.add_argument_group("spidertwin load template")
    g.add_argument("--spider-op", choices=OPS, default=_env("op", "get"), help="the operation")
    g.add_argument("--spider-resource", choices=tuple(RESOURCE_OPS), default=_env("resource", "vpc"),
                   help="the resource (picks the user class)")
    g.add_argument("--spider-connection", default=_env("connection", "mock-config01"),
                   help="the Spider connection config")
    g.add_argument("--spider-n", type=int, default=int(_env("n", "0") or 0),
                   help="N (default: the number of users)")
    g.add_argument("--spider-same-name", action="store_true", default=_env("same_name") == "1",
                   help="contention: every user works on the same resource")
    g.add_argument("--spider-loop", action="store_true", default=_env("loop") == "1",
                   help="repeat until --run-time (default: each user once)")
    g.add_argument("--spider-run-id", default=_env("run_id"), help="names are <prefix>-<run id>-... (default random)")
    g.add_argument("--spider-prefix", default=_env("prefix", "load"), help="resource name prefix (default load)")
    g.add_argument("--spider-image", default=_env("image"), help="VM image (default: picked from the connection)")
    g.add_argument("--spider-spec", default=_env("spec"), help="VM spec (default: picked from the connection)")
    g.add_argument("--spider-action", choices=VM_ACTIONS, default=_env("action", "reboot"),
                   help="VM control action")
    g.add_argument("--spider-async", action="store_true", default=_env("async") == "1",
                   help="submit creates/deletes/VM control as jobs (?async=true) and wait for each job")
    g.add_argument("--spider-list-size", type=int, default=int(_env("list_size", "10")),
                   help="resources created for a list template")
    g.add_argument("--spider-setup", action="store_true", default=_env("setup") == "1",
                   help="create prerequisites at test start and delete the run's resources at test stop")


def plan_from_options(options: Any) -> LoadPlan:
    plan = LoadPlan(op=options.spider_op, resource=options.spider_resource,
                    users=options.spider_n or options.num_users or 1, connection=options.spider_connection,
                    same_name=options.spider_same_name, loop=options.spider_loop, prefix=options.spider_prefix,
                    image=options.spider_image, spec=options.spider_spec, action=options.spider_action,
                    list_size=options.spider_list_size, async_jobs=options.spider_async)
    if options.spider_run_id:
        plan.run_id = options.spider_run_id
    return plan


class Coordinator:
    """User indices and completions: local counters, or the master's over Locust messages."""

    def __init__(self, environment: Any, plan: LoadPlan) -> None:
        self.environment = environment
        self.plan = plan
        self.counter = itertools.count()
        self.done = 0
        self.window = [float("inf"), 0.0]  # first request start, last request end (one-shot runs)
        self.pending: dict[str, AsyncResult] = {}
        runner = environment.runner
        if isinstance(runner, MasterRunner):
            runner.register_message("spider_ticket", self._master_ticket)
            runner.register_message("spider_done", lambda environment, msg, **kw: self._count_done(*msg.data))
        elif isinstance(runner, WorkerRunner):
            runner.register_message("spider_ticket", self._worker_ticket)

    def ticket(self) -> int:
        runner = self.environment.runner
        if not isinstance(runner, WorkerRunner):
            return next(self.counter)
        request = uuid.uuid4().hex
        self.pending[request] = result = AsyncResult()
        runner.send_message("spider_ticket", {"request": request})
        return result.get(timeout=60)

    def finished(self, first_start: float, last_end: float) -> None:
        runner = self.environment.runner
        if isinstance(runner, WorkerRunner):
            runner.send_message("spider_done", [first_start, last_end])
        else:
            self._count_done(first_start, last_end)

    def _master_ticket(self, environment: Any, msg: Any, **kwargs: Any) -> None:
        environment.runner.send_message("spider_ticket", {"request": msg.data["request"], "index": next(self.counter)},
                                        client_id=msg.node_id)

    def _worker_ticket(self, environment: Any, msg: Any, **kwargs: Any) -> None:
        result = self.pending.pop(msg.data["request"], None)
        if result is not None:
            result.set(msg.data["index"])

    def _count_done(self, first_start: float, last_end: float) -> None:
        """One-shot: stop as soon as every user did its operation (not at --run-time)."""
        self.done += 1
        self.window = [min(self.window[0], first_start), max(self.window[1], last_end)]
        if self.done == self.plan.users and not self.plan.loop:
            gevent.spawn(self._quit_when_counted)

    def _quit_when_counted(self) -> None:
        """Workers report their statistics every few seconds: wait until the master has all N requests,
        then one tick of Locust's CSV writer (it rewrites the files every second), then quit."""
        deadline = time.monotonic() + 15
        while self.environment.stats.total.num_requests < self.plan.users and time.monotonic() < deadline:
            gevent.sleep(0.1)
        gevent.sleep(1.2)
        self.environment.runner.quit()


@events.init.add_listener
def on_init(environment: Any, **kwargs: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return
    plan = plan_from_options(options)
    if isinstance(environment.runner, (LocalRunner, MasterRunner)) and environment.user_classes:
        # the resource picks the one user class that runs (the file defines one per resource)
        environment.user_classes[:] = [CONCRETE[plan.resource]]
    coordinator = Coordinator(environment, plan)
    templates.SpiderTemplateUser.configure(plan, coordinator.ticket, coordinator.finished)
    environment.spider_plan = plan
    environment.spider_coordinator = coordinator


@events.test_start.add_listener
def on_test_start(environment: Any, **kwargs: Any) -> None:
    options = environment.parsed_options
    if isinstance(environment.runner, WorkerRunner):
        # a worker started on its own (another host) knows the template only now: the master's spawn
        # message carries every --spider-* option, and test_start fires after it is applied
        plan = plan_from_options(options)
        coordinator = environment.spider_coordinator
        coordinator.plan = environment.spider_plan = plan
        templates.SpiderTemplateUser.configure(plan, coordinator.ticket, coordinator.finished)
        return
    if not options.spider_setup:
        return
    from concurrency.scenario import Rest, setup

    rest = Rest(environment.host)
    setup(rest, environment.spider_plan)


@events.test_stop.add_listener
def on_test_stop(environment: Any, **kwargs: Any) -> None:
    options = environment.parsed_options
    if not options.spider_setup or isinstance(environment.runner, WorkerRunner):
        return
    from concurrency.scenario import Rest, cleanup

    report = cleanup(Rest(environment.host), environment.spider_plan)
    for problem in report.problems:
        print(f"spider load cleanup: {problem}", flush=True)


def final_stats(environment: Any) -> dict[str, Any]:
    """The statistics at the very end (Locust's CSVs are rewritten once a second, so they can miss the
    last second): per request name and aggregated, with percentiles, plus failures by message."""
    stats = environment.stats

    def entry(e: Any) -> dict[str, Any]:
        pct = {f"p{p:g}": (e.get_response_time_percentile(p / 100) if e.num_requests else 0)
               for p in (50, 66, 75, 80, 90, 95, 98, 99, 99.9, 100)}
        return {"name": e.name, "method": e.method, "requests": e.num_requests, "failures": e.num_failures,
                "ops_per_s": e.total_rps, "avg_ms": e.avg_response_time, "min_ms": e.min_response_time or 0,
                "max_ms": e.max_response_time, "start_time": e.start_time,
                "last_request_timestamp": e.last_request_timestamp, **pct}

    coordinator = getattr(environment, "spider_coordinator", None)
    first, last = coordinator.window if coordinator is not None else (float("inf"), 0.0)
    return {"window_s": last - first if last > first else None,
            "entries": [entry(e) for e in stats.entries.values()], "aggregated": entry(stats.total),
            "failures": [{"name": f.name, "method": f.method, "error": str(f.error), "occurrences": f.occurrences} for f in stats.errors.values()]}


@events.quitting.add_listener
def on_quitting(environment: Any, **kwargs: Any) -> None:
    options = environment.parsed_options
    if options is None or not options.csv_prefix or isinstance(environment.runner, WorkerRunner):
        return
    with open(f"{options.csv_prefix}_final.json", "w", encoding="utf-8") as handle:
        json.dump(final_stats(environment), handle, indent=1, default=str)
