"""Locust user classes of the load templates: one class per resource, the operation from the plan.

Importing this module imports Locust, which monkey-patches the process with gevent; only Locust
processes import it (`spider load` runs Locust in a subprocess).

A user does the plan's operation on its own resource (`LoadPlan.target(index)`), or, in contention
mode, everyone on resource 0. One-shot: each user does it once, takes a ticket (`index`) from
`tickets`, and reports completion so the run can end as soon as all N are done. Loop: the operation
repeats until `--run-time`; create and delete loop as a churn (create then delete a fresh name).

Requests are named `"<op> <resource>"` in Locust's statistics; in contention mode the expected answer
(`already exists` for create, `does not exist` for delete) counts as success under its own name
`"<op> <resource> (already exists)"`, so the report can count both. Failure messages have this run's
names replaced by `<name>`, so Locust's failure table groups them by message.
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable

from locust import FastHttpUser, constant, task
from locust.exception import StopUser

from concurrency.plan import LoadPlan, request_body


class SpiderTemplateUser(FastHttpUser):
    """The template's mechanics; subclasses name the resource. The plan, a ticket source and the
    completion callback are installed by the locustfile at init (`configure`)."""

    abstract = True
    resource = ""
    wait_time = constant(0)
    # a create on a throttled or slow cloud legitimately takes minutes: the gate judges latency, not a socket timeout
    network_timeout = 900.0
    connection_timeout = 900.0
    plan: LoadPlan | None = None
    tickets: Callable[[], int] | None = None
    on_done: Callable[[float, float], None] | None = None

    @classmethod
    def configure(cls, plan: LoadPlan, tickets: Callable[[], int], on_done: Callable[[float, float], None]) -> None:
        SpiderTemplateUser.plan, SpiderTemplateUser.tickets, SpiderTemplateUser.on_done = plan, tickets, on_done

    def on_start(self) -> None:
        assert self.plan is not None and self.tickets is not None, "the locustfile configures the templates"
        self.index = self.tickets()
        self.iteration = 0
        self.first_start, self.last_end = float("inf"), 0.0  # wall clock, for the measured window

    # ---- one request, judged ---------------------------------------------------------------------

    def send(self, request: tuple[str, str, Any], *, name: str | None = None) -> bool:
        plan = self.plan
        method, path, body = request
        path, body = request_body(plan, method, path, body)
        as_job = plan.submits_jobs and name is None
        if as_job:
            path += ("&" if "?" in path else "?") + "async=true"
        kwargs: dict[str, Any] = {"name": name or plan.request_name, "catch_response": True}
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs["headers"] = {"Content-Type": "application/json"}
        self.first_start = min(self.first_start, time.time())
        submitted = time.perf_counter()
        job_id = ""
        with self.client.request(method, path, **kwargs) as resp:
            self.last_end = time.time()
            if resp.status_code == 202 and as_job:
                resp.success()
                job_id = json.loads(resp.text)["Id"]
            elif resp.status_code == 200:
                resp.success()
                return True
            else:
                message = self._message(resp)
                if plan.is_contention_answer(message):
                    resp.request_meta["name"] = plan.contention_name
                    resp.success()
                    return False
                resp.failure(plan.normalise_message(message))
                return False
        return self.await_job(job_id, submitted)

    def await_job(self, job_id: str, submitted: float) -> bool:
        """Long-poll the job to its end; its time from submit is the report's completion row."""
        plan = self.plan
        while True:
            with self.client.request("GET", f"/spider/job/{job_id}?wait=60", name="job poll",
                                     catch_response=True) as resp:
                resp.success()  # the poll itself is bookkeeping; the completion is judged below
                job = json.loads(resp.text) if resp.status_code == 200 else {"Status": "failed",
                                                                            "Error": self._message(resp)}
            if job.get("Status") in ("done", "failed", "cancelled"):
                break
        self.last_end = time.time()
        error = None if job["Status"] == "done" else (job.get("Error") or job["Status"])
        name = plan.completion_name
        if error and plan.is_contention_answer(error):
            name, error = plan.contention_name, None
        self.environment.events.request.fire(
            request_type="JOB", name=name, response_time=(time.perf_counter() - submitted) * 1000,
            response_length=0, exception=Exception(plan.normalise_message(error)) if error else None, context={})
        return error is None and name == plan.completion_name

    @staticmethod
    def _message(resp: Any) -> str:
        if resp.status_code == 0:  # connection error: FastHttp reports it as status 0
            return f"connection error: {resp.error}"
        try:
            data = json.loads(resp.text or "")
            text = data.get("message", resp.text) if isinstance(data, dict) else resp.text
        except ValueError:
            text = resp.text or ""
        return f"HTTP {resp.status_code}: {text}"

    # ---- the operation ---------------------------------------------------------------------------

    def operate(self) -> None:
        plan = self.plan
        if plan.op == "create":
            name = plan.target(self.index, self.iteration)
            created = self.send(plan.create_request(name, self.index))
            if plan.loop and created:  # churn: the next iteration creates a fresh name
                self.send(plan.delete_request(name, self.index), name=f"delete {plan.resource}")
        elif plan.op == "delete":
            if plan.loop and self.iteration:  # churn: make what this iteration deletes
                name = plan.target(self.index, self.iteration)
                self.send(plan.create_request(name, self.index), name=f"create {plan.resource}")
            else:
                name = plan.target(self.index)
            self.send(plan.delete_request(name, self.index))
        else:
            self.send(plan.read_request(plan.target(self.index)))

    def run_once_or_loop(self) -> None:
        try:
            self.operate()
        finally:
            self.iteration += 1
            if not self.plan.loop:
                self.on_done(self.first_start, self.last_end)
        if not self.plan.loop:
            raise StopUser()


class _OneOperation(SpiderTemplateUser):
    abstract = True

    @task
    def spider_operation(self) -> None:
        self.run_once_or_loop()


# resource -> (class name, what it covers); the classes are made from this table, abstract, so a
# locustfile (ours, or yours) subclasses the one it runs
CATALOGUE: dict[str, tuple[str, str]] = {
    "vpc": ("VpcUser", "VPC create / delete / get / list."),
    "subnet": ("SubnetUser", "Subnet add (create) / remove (delete) / get on a base VPC."),
    "sg": ("SecurityGroupUser", "Security group create / delete / get / list in a base VPC."),
    "sgrule": ("SecurityRuleUser", "SG rule add / remove on a base SG: distinct ports, or one port in contention."),
    "keypair": ("KeyPairUser", "Key pair create / delete / get / list."),
    "vm": ("VmUser", "VM start (create) / terminate (delete) / get / list / status / control "
                     "(suspend, resume, reboot)."),
    "nlb": ("NlbUser", "NLB create / delete / get / list, each NLB with the base VMs as its VM group."),
}
TEMPLATES: dict[str, type[SpiderTemplateUser]] = {
    resource: type(name, (_OneOperation,), {"abstract": True, "resource": resource, "__doc__": doc,
                                             "__module__": __name__})
    for resource, (name, doc) in CATALOGUE.items()
}
globals().update({cls.__name__: cls for cls in TEMPLATES.values()})
