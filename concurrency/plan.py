"""What one `spider load` template does, as plain data: the operation, the resource, the names and
request bodies of user i, and which error answers are the expected outcome of contention.

Everything here is pure (no Locust, no network), so the Locust users (`templates.py`), the setup and
cleanup over REST (`scenario.py`) and the runner (`run.py`) agree on the same names without talking to
each other, also across Locust worker processes and machines.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

# Operations per resource, as the users say them. `add`/`remove` are the create/delete of the
# dependent resources (subnets on a VPC, rules on an SG); `start`/`terminate` those of VMs.
RESOURCE_OPS: dict[str, tuple[str, ...]] = {
    "vpc": ("create", "delete", "get", "list"),
    "subnet": ("create", "delete", "get"),
    "sg": ("create", "delete", "get", "list"),
    "sgrule": ("create", "delete"),
    "keypair": ("create", "delete", "get", "list"),
    "vm": ("create", "delete", "get", "list", "status", "control"),
    "nlb": ("create", "delete", "get", "list"),
}
OP_ALIASES = {"add": "create", "start": "create", "remove": "delete", "terminate": "delete"}
OPS = ("create", "delete", "get", "list", "status", "control")
VM_ACTIONS = ("suspend", "resume", "reboot")
# What each resource needs before its measured operation runs.
PREREQUISITES: dict[str, tuple[str, ...]] = {
    "vpc": (), "keypair": (), "subnet": ("vpc",), "sg": ("vpc",), "sgrule": ("vpc", "sg"),
    "vm": ("vpc", "sg", "keypair"), "nlb": ("vpc", "sg", "keypair", "vms"),
}
# The Spider's resource count words (`GET /spider/count<word>/<conn>`) checked before and after a run.
COUNT_WORDS = ("vpc", "subnet", "securitygroup", "keypair", "vm", "nlb")
# In contention mode (one name, N requests) these answers are the correct outcome, not failures.
CONTENTION_ANSWERS = {"create": "already exists", "delete": "does not exist"}
_CONTENTION_PATTERNS = {"create": re.compile(r"already exist|duplicate", re.I),
                        "delete": re.compile(r"does not exist|not exist|not found", re.I)}


def normalise_op(op: str) -> str:
    op = op.strip().lower()
    return OP_ALIASES.get(op, op)


@dataclass
class LoadPlan:
    """One template run: `OP RESOURCE` by `users` users on `connection`.

    `run_id` makes every name of the run unique (`<prefix>-<run_id>-...`), so concurrent runs and
    leftovers of a crashed run never collide, and cleanup can find exactly this run's resources."""

    op: str
    resource: str
    users: int
    connection: str
    same_name: bool = False
    loop: bool = False
    prefix: str = "load"
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    image: str = ""
    spec: str = ""
    action: str = "reboot"
    list_size: int = 10
    nlb_vms: int = 2
    async_jobs: bool = False   # submit creates/deletes/control as jobs (?async=true) and wait for them

    def __post_init__(self) -> None:
        self.op = normalise_op(self.op)
        self.resource = self.resource.strip().lower()
        if self.resource not in RESOURCE_OPS:
            raise ValueError(f"unknown resource {self.resource!r}; one of {', '.join(RESOURCE_OPS)}")
        if self.op not in RESOURCE_OPS[self.resource]:
            raise ValueError(f"{self.resource} supports {', '.join(RESOURCE_OPS[self.resource])}, not {self.op!r}")
        if self.action not in VM_ACTIONS:
            raise ValueError(f"VM control action must be one of {', '.join(VM_ACTIONS)}")
        if self.users < 1:
            raise ValueError("N must be at least 1")

    # ---- names ------------------------------------------------------------------------------------

    @property
    def stem(self) -> str:
        """Every resource of the run starts with this; cleanup deletes exactly what starts with it."""
        return f"{self.prefix}-{self.run_id}"

    def base(self, kind: str, index: int = 0) -> str:
        """A prerequisite's name (`load-ab12cd-base-vpc`)."""
        return f"{self.stem}-base-{kind}" + (f"-{index}" if index else "")

    def target_index(self, index: int) -> int:
        """Contention mode: every user works on resource 0."""
        return 0 if self.same_name else index

    def target(self, index: int, iteration: int = 0) -> str:
        """The measured resource of user `index` (iteration > 0 only in loop mode create/delete churn)."""
        i = self.target_index(index)
        word = {"sgrule": "rule"}.get(self.resource, self.resource)
        return f"{self.stem}-{word}-{i}" + (f"-{iteration}" if iteration else "")

    @property
    def prepared_count(self) -> int:
        """How many measured resources setup creates: the ones get/delete/status/control address, or a
        list's worth for list; none for create (the measured phase creates them)."""
        if self.op == "create":
            return 0
        if self.op == "list":
            return self.list_size
        return 1 if self.same_name else self.users

    def normalise_message(self, text: str) -> str:
        """Failures are grouped by message: this run's generated names become `<name>`."""
        return re.sub(re.escape(self.stem) + r"[\w.-]*", "<name>", text)

    def is_contention_answer(self, message: str) -> bool:
        pattern = _CONTENTION_PATTERNS.get(self.op)
        return bool(self.same_name and pattern and pattern.search(message))

    @property
    def request_name(self) -> str:
        return f"{self.op} {self.resource}" + (" (submit)" if self.submits_jobs else "")

    @property
    def submits_jobs(self) -> bool:
        """Async mode applies to the operations that change something; reads stay synchronous."""
        return self.async_jobs and self.op not in ("get", "list", "status")

    @property
    def completion_name(self) -> str:
        """Async mode: the time from submit to the job's end, reported apart from the submit latency."""
        return f"{self.op} {self.resource} (completion)"

    @property
    def outcome_name(self) -> str:
        """The statistics row whose successes count: the job's completion in async mode."""
        return self.completion_name if self.submits_jobs else self.request_name

    @property
    def contention_name(self) -> str:
        return f"{self.request_name} ({CONTENTION_ANSWERS.get(self.op, 'expected')})"

    # ---- request bodies (CB-Spider's ReqInfo) -----------------------------------------------------

    def subnet_cidr(self, index: int) -> str:
        """/28 blocks of the base VPC's 10.0.0.0/16 (AWS allows /16../28): room for 4,095 subnets;
        10.0.0.0/28 is the VPC's own first subnet."""
        offset = (index + 1) * 16
        return f"10.0.{offset // 256}.{offset % 256}/28"

    def rule_port(self, index: int) -> int:
        return 10000 + self.target_index(index)

    def rule(self, index: int) -> dict[str, str]:
        port = str(self.rule_port(index))
        return {"Direction": "inbound", "IPProtocol": "TCP", "FromPort": port, "ToPort": port, "CIDR": "0.0.0.0/0"}

    def vpc_req(self, name: str) -> dict[str, Any]:
        return {"Name": name, "IPv4_CIDR": "10.0.0.0/16",
                "SubnetInfoList": [{"Name": f"{name}-subnet", "IPv4_CIDR": "10.0.0.0/28"}]}

    def sg_req(self, name: str) -> dict[str, Any]:
        return {"Name": name, "VPCName": self.base("vpc"),
                "SecurityRules": [{"Direction": "inbound", "IPProtocol": "TCP", "FromPort": "22", "ToPort": "22",
                                   "CIDR": "0.0.0.0/0"}]}

    def vm_req(self, name: str) -> dict[str, Any]:
        vpc = self.base("vpc")
        return {"Name": name, "ImageName": self.image, "VMSpecName": self.spec, "VPCName": vpc,
                "SubnetName": f"{vpc}-subnet", "SecurityGroupNames": [self.base("sg")],
                "KeyPairName": self.base("keypair")}

    def base_vm_names(self) -> list[str]:
        return [self.base("vm", i + 1) for i in range(self.nlb_vms)]

    def nlb_req(self, name: str) -> dict[str, Any]:
        return {"Name": name, "VPCName": self.base("vpc"), "Type": "PUBLIC", "Scope": "REGION",
                "Listener": {"Protocol": "TCP", "Port": "22"},
                "VMGroup": {"Protocol": "TCP", "Port": "22", "VMs": self.base_vm_names()},
                "HealthChecker": {"Protocol": "TCP", "Port": "22"}}

    def create_request(self, name: str, index: int) -> tuple[str, str, Any]:
        """(method, path, ReqInfo-or-body) creating the measured resource `name` of user `index`."""
        r = self.resource
        if r == "vpc":
            return "POST", "/spider/vpc", self.vpc_req(name)
        if r == "subnet":
            return "POST", f"/spider/vpc/{self.base('vpc')}/subnet", {"Name": name, "IPv4_CIDR": self.subnet_cidr(
                self.target_index(index))}
        if r == "sg":
            return "POST", "/spider/securitygroup", self.sg_req(name)
        if r == "sgrule":
            return "POST", f"/spider/securitygroup/{self.base('sg')}/rules", {"RuleInfoList": [self.rule(index)]}
        if r == "keypair":
            return "POST", "/spider/keypair", {"Name": name}
        if r == "vm":
            return "POST", "/spider/vm", self.vm_req(name)
        return "POST", "/spider/nlb", self.nlb_req(name)

    def delete_request(self, name: str, index: int) -> tuple[str, str, Any]:
        r = self.resource
        if r == "subnet":
            return "DELETE", f"/spider/vpc/{self.base('vpc')}/subnet/{name}", None
        if r == "sgrule":
            return "DELETE", f"/spider/securitygroup/{self.base('sg')}/rules", {"RuleInfoList": [self.rule(index)]}
        return "DELETE", f"/spider/{self.path_word}/{name}", None

    def read_request(self, name: str) -> tuple[str, str, Any]:
        """get / list / status / control: no body, ConnectionName in the query."""
        if self.op == "list":
            return "GET", f"/spider/{self.path_word}", None
        if self.op == "status":
            return "GET", f"/spider/vmstatus/{name}", None
        if self.op == "control":
            return "PUT", f"/spider/controlvm/{name}?action={self.action}", None
        if self.resource == "subnet":
            return "GET", f"/spider/vpc/{self.base('vpc')}/subnet/{name}", None
        return "GET", f"/spider/{self.path_word}/{name}", None

    @property
    def path_word(self) -> str:
        return {"sg": "securitygroup"}.get(self.resource, self.resource)

    # ---- transport -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LoadPlan":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def request_body(plan: LoadPlan, method: str, path: str, body: Any) -> tuple[str, Any]:
    """CB-Spider's envelope: ConnectionName + ReqInfo in the body for POST/DELETE-with-body,
    ConnectionName in the query otherwise (GET with a body is legal there, but the query is plainer)."""
    if body is None:
        sep = "&" if "?" in path else "?"
        return f"{path}{sep}ConnectionName={plan.connection}", None
    return path, {"ConnectionName": plan.connection, "ReqInfo": body}
