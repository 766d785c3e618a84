"""CB-Spider's OpenStack driver, call for call, against Cloud-Twin.

``tests/gophercloud/cbspider_flow/main.go`` replays what cb-spider v0.13's OpenStack driver sends (client
creation as ConnectCloud does it, CreateVPC, CreateSecurity over Nova's os-security-groups with Neutron
rules, CreateKey, StartVM booting from a volume with a floating IP, suspend / resume / reboot, TerminateVM,
DeleteKey / DeleteSecurity / DeleteVPC) with Debian's gophercloud 0.12, the Go SDK under the driver. This
test builds it in GOPATH mode (no module download), runs it against a twin and then checks, in the twin's
own state, that the flow left nothing of its project behind.

Needs ``go`` and the gophercloud sources (apt-get install golang-go golang-github-gophercloud-gophercloud-dev):
skipped with the reason otherwise, or failed when SPIDERTWIN_REQUIRE_ROOT_TESTS=1 (CI installs both).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

FLOW_SRC = Path(__file__).resolve().parents[1] / "gophercloud" / "cbspider_flow"
GOPATH = Path("/usr/share/gocode")
GOPHERCLOUD = GOPATH / "src" / "github.com" / "gophercloud" / "gophercloud"

CLOUD = "cloud-1"
PROJECT = "cbspider-flow"
STEPS = ["connect", "ListImage", "CreateVPC", "GetVPC", "CreateSecurity", "AddRules", "GetSecurity+ListSecurity",
         "CreateKey", "StartVM: create (BFV)", "StartVM: wait ACTIVE", "StartVM: AssociatePublicIP",
         "StartVM: read back", "GetVM: root volume", "SuspendVM", "ResumeVM", "RebootVM", "TerminateVM",
         "DeleteKey", "DeleteSecurity", "DeleteVPC", "nothing left"]
SUMMARY = re.compile(r"cbspider-openstack-flow: (\d+) steps passed\b.*")


def _missing_toolchain() -> str | None:
    if shutil.which("go") is None:
        return "go is not installed (apt-get install golang-go)"
    if not (GOPHERCLOUD / "openstack" / "client.go").is_file():
        return f"the gophercloud sources are not under {GOPHERCLOUD} (apt-get install golang-github-gophercloud-gophercloud-dev)"
    return None


@pytest.fixture(scope="module")
def flow_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The flow, built in GOPATH mode against the Debian gophercloud (GOCACHE in a temp dir)."""
    missing = _missing_toolchain()
    if missing:
        if os.environ.get("SPIDERTWIN_REQUIRE_ROOT_TESTS") == "1":  # CI installs golang-go and gophercloud
            pytest.fail(f"SPIDERTWIN_REQUIRE_ROOT_TESTS=1 but {missing}")
        pytest.skip(missing)
    tmp = tmp_path_factory.mktemp("cbspider-flow")
    out = tmp / "flow"
    env = {**os.environ, "GOPATH": str(GOPATH), "GO111MODULE": "off", "GOFLAGS": "", "GOPROXY": "off",
           "GOCACHE": str(tmp / "gocache"), "HOME": os.environ.get("HOME") or str(tmp)}
    if shutil.which("gcc") is None:  # golang-go without its recommends: build pure Go
        env["CGO_ENABLED"] = "0"
    res = subprocess.run(["go", "build", "-o", str(out), "main.go"], cwd=FLOW_SRC, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"go build failed:\n{res.stdout}\n{res.stderr}"
    return out


def _leftovers(twin: Any, project_id: str) -> list[str]:
    """Every object of the project in every region's service state, but Neutron's default group."""
    out = []
    for region in twin.clouds[CLOUD].regions.values():
        objs = [o for svc in region.services.values() if hasattr(svc, "all_objects")
                for o in svc.all_objects() if getattr(o, "project_id", None) == project_id]
        default_groups = {o.id for o in objs if type(o).__name__ == "SecurityGroup" and o.name == "default"}
        for o in objs:
            kind = type(o).__name__
            if o.id in default_groups or (kind == "SecurityGroupRule"
                                          and getattr(o, "security_group_id", None) in default_groups):
                continue
            out.append(f"{region.name} {kind} {o.id} {o.name!r} state={o.state!r}")
    return out


def test_cbspider_openstack_driver_flow_call_for_call(flow_binary: Path, threaded_twin: Any) -> None:
    project_id = threaded_twin.call(lambda: threaded_twin.twin.cloud(CLOUD, create=True).project(PROJECT, create=True).id)
    env = {**os.environ, "OS_AUTH_URL": f"{threaded_twin.url}/v3", "OS_USERNAME": "admin", "OS_PASSWORD": "admin",
           "OS_DOMAIN_NAME": CLOUD, "OS_PROJECT_ID": project_id, "OS_REGION_NAME": "RegionOne", "OS_ZONE": "nova",
           "CBSPIDER_IMAGE": "ubuntu-22.04", "CBSPIDER_FLAVOR": "m1.small", "CBSPIDER_NAME_PREFIX": "cbsflow",
           "CBSPIDER_FLOW_TRACE": "0"}
    res = subprocess.run([str(flow_binary), "-timeout", "60s"], env=env, capture_output=True, text=True, timeout=600)
    print(res.stdout)
    assert res.returncode == 0, f"the flow failed (exit {res.returncode}):\n{res.stdout}\n{res.stderr}"

    lines = res.stdout.splitlines()
    m = SUMMARY.fullmatch(lines[-1])
    assert m, f"no summary line: {lines[-1]!r}"
    assert int(m.group(1)) == len(STEPS), lines[-1]
    ok_steps = [re.sub(r"\s+ok\s.*$", "", line.split(" ", 2)[2]).strip() for line in lines if line.startswith("step ")]
    assert ok_steps == STEPS

    # the twin saw the driver's requests: the Nova proxy API for the group, a boot from volume, a floating IP
    requests = threaded_twin.server._runner.app["dispatcher"].requests
    for op in ("compute:os_security_group:create", "compute:os_security_group:delete", "compute:server:create",
               "compute:server:action", "compute:keypair:create", "network:router:action"):
        assert requests[op] >= 1, (op, dict(requests))
    assert any(op.startswith("volume:") for op in requests), dict(requests)

    # ... and nothing of the project is left: servers, volumes, attachments, ports, floating IPs, routers,
    # networks, subnets, key pairs, groups other than default
    assert threaded_twin.call(_leftovers, threaded_twin.twin, project_id) == []
    counts = threaded_twin.call(lambda: {k: v for region in threaded_twin.twin.clouds[CLOUD].regions.values()
                                         for k, v in region.cinder.counts().items()})
    assert counts and set(counts.values()) == {0}, counts
