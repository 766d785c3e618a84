"""moto in a worker process (mock_driver/moto_worker.py): calls, errors, lifecycle, no leaked processes.

Most tests use their own ``MotoWorkerBackend`` (not the process-wide one) so they can kill and close
it freely; ``test_mock_driver_close_stops_the_shared_worker`` checks the shared one.
"""

import os
import signal
import statistics
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from mock_driver import backends
from mock_driver.moto_backend import MotoBackend
from mock_driver.moto_worker import ClientProxy, MotoWorkerBackend
from spider_core.drivers.aws.session import map_error
from spider_core.errors import DriverError, DriverNotFound


def _account() -> str:
    return "7" + str(uuid.uuid4().int)[:11]


def _gone(pid: int) -> bool:
    """True if ``pid`` is not running (absent, or a zombie of some other parent)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            state = next(line for line in f if line.startswith("State:"))
    except (FileNotFoundError, ProcessLookupError):
        return True
    return "Z" in state.split()[1]


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return _gone(pid)


def _children_named(marker: str) -> list[int]:
    """Our direct children whose command line holds ``marker`` (zombies included)."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == me and marker in cmd:
            found.append(int(entry))
    return found


@pytest.fixture
def backend():
    b = MotoWorkerBackend()
    yield b
    pid = b.worker.pid
    b.close()
    if pid is not None:
        assert _gone(pid)


def test_calls_work_and_patches_apply_in_the_worker(backend):
    ec2 = backend.client(_account(), "us-east-1", "ec2")
    assert isinstance(ec2, ClientProxy)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16",
                         TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "v"}]}])
    vpc_id = vpc["Vpc"]["VpcId"]
    got = ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Vpcs"]
    assert [v["VpcId"] for v in got] == [vpc_id] and got[0]["Tags"] == [{"Key": "Name", "Value": "v"}]
    assert vpc["ResponseMetadata"]["HTTPStatusCode"] == 200
    pid = backend.worker.pid
    assert pid and pid != os.getpid()
    status = backend.status()
    assert status["pid"] == pid and status["patched"]
    assert all(status["applied"].get(k) for k in ("method_names", "ec2_tags_by_resource", "ec2_exact_filters",
                                                  "ec2_security_group_by_id", "user_agent"))
    # elbv2 (query protocol) too
    elb = backend.client(ec2_account := vpc["Vpc"]["OwnerId"], "us-east-1", "elbv2")
    assert ec2_account and elb.describe_load_balancers()["LoadBalancers"] == []


def test_round_trip_overhead(backend):
    backend.status()  # started
    samples = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(200):
            backend.worker.request(("status",), "status")
        samples.append((time.perf_counter() - t) / 200)
    rtt_ms = statistics.median(samples) * 1000
    print(f"worker round trip: {rtt_ms:.3f} ms")
    assert rtt_ms < 5  # ~0.07 ms measured; generous for a loaded machine


def test_client_errors_survive_the_trip(backend):
    account = _account()
    ec2 = backend.client(account, "us-east-1", "ec2")
    local = MotoBackend.local().client(account, "us-east-1", "ec2")  # the same call in this process
    with pytest.raises(ClientError) as remote:
        ec2.describe_vpcs(VpcIds=["vpc-12345678"])
    with pytest.raises(ClientError) as here:
        MotoBackend.local().executor.submit(lambda: local.describe_vpcs(VpcIds=["vpc-12345678"])).result()
    assert type(remote.value) is ClientError
    assert remote.value.response["Error"] == here.value.response["Error"]
    assert remote.value.response["Error"]["Code"] == "InvalidVpcID.NotFound"
    assert remote.value.operation_name == "DescribeVpcs" and str(remote.value) == str(here.value)
    mapped = map_error(remote.value)
    assert isinstance(mapped, DriverNotFound) and str(mapped).startswith("InvalidVpcID.NotFound: ")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")
    with pytest.raises(ClientError) as err:
        ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")
    assert err.value.response["Error"]["Code"] == "InvalidSubnet.Conflict"
    assert err.value.operation_name == "CreateSubnet"
    # botocore's own exceptions come back as themselves
    with pytest.raises(ParamValidationError) as bad:
        ec2.create_vpc(CidrBlock=123)
    assert "CidrBlock" in str(bad.value)
    assert "ParamValidationError" in str(map_error(bad.value))
    # not an API: the same AttributeError as a boto3 client; client extras are not proxied
    with pytest.raises(AttributeError, match="no_such_api"):
        ec2.no_such_api()
    with pytest.raises(AttributeError, match="meta"):
        ec2.meta  # noqa: B018


def test_close_stops_the_worker(backend):
    backend.client(_account(), "us-east-1", "ec2").describe_vpcs()
    pid = backend.worker.pid
    assert pid and not _gone(pid)
    backend.close()
    assert _gone(pid) and _children_named("mock_driver.moto_worker").count(pid) == 0
    with pytest.raises(DriverError, match="closed"):
        backend.client(_account(), "us-east-1", "ec2").describe_vpcs()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_dead_worker_is_reported_and_replaced(backend, sig):
    account = _account()
    ec2 = backend.client(account, "us-east-1", "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    pid = backend.worker.pid
    os.kill(pid, sig)
    assert _wait_gone(pid)
    with pytest.raises(DriverError) as err:
        ec2.describe_vpcs()
    msg = str(err.value)
    assert f"pid {pid}" in msg and "died" in msg and sig.name in msg and "state is lost" in msg
    assert "ec2.describe_vpcs" in msg
    assert _gone(pid) and pid not in _children_named("mock_driver.moto_worker")  # reaped
    # the next call starts a fresh, empty worker
    with pytest.raises(ClientError) as nf:
        ec2.describe_vpcs(VpcIds=[vpc])
    assert nf.value.response["Error"]["Code"] == "InvalidVpcID.NotFound"
    assert backend.worker.pid not in (None, pid) and backend.worker.generation == 2


def test_worker_killed_during_a_call(backend):
    ec2 = backend.client(_account(), "us-east-1", "ec2")
    ec2.describe_vpcs()
    pid = backend.worker.pid
    os.kill(pid, signal.SIGSTOP)  # the call below is in flight when the worker dies
    killer = subprocess.Popen([sys.executable, "-c", f"import os,time,signal; time.sleep(0.3); "
                               f"os.kill({pid}, signal.SIGKILL)"])
    try:
        with pytest.raises(DriverError, match=r"died \(killed by SIGKILL\) during ec2.create_vpc"):
            ec2.create_vpc(CidrBlock="10.0.0.0/16")
    finally:
        killer.wait()
    assert _gone(pid)
    assert ec2.describe_vpcs()["Vpcs"] is not None  # replaced


def test_hung_worker_is_killed_and_replaced(backend, monkeypatch):
    from mock_driver import moto_worker
    ec2 = backend.client(_account(), "us-east-1", "ec2")
    ec2.describe_vpcs()
    pid = backend.worker.pid
    monkeypatch.setattr(moto_worker, "CALL_TIMEOUT_S", 0.5)
    os.kill(pid, signal.SIGSTOP)  # alive but silent: a hang, not a death
    started = time.monotonic()
    with pytest.raises(DriverError, match=r"did not answer within 0.5 s and was killed during ec2.create_vpc"):
        ec2.create_vpc(CidrBlock="10.0.0.0/16")
    assert time.monotonic() - started < 10
    assert _wait_gone(pid) and pid not in _children_named("mock_driver.moto_worker")
    monkeypatch.setattr(moto_worker, "CALL_TIMEOUT_S", 120.0)
    assert ec2.describe_vpcs()["Vpcs"] is not None and backend.worker.pid != pid  # a fresh worker


def test_reset_empties_the_worker(backend):
    account = _account()
    ec2 = backend.client(account, "us-east-1", "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    images = backend.ensure_images(account, "us-east-1", ["img-a"])
    assert images["img-a"].startswith("ami-")
    pid = backend.worker.pid
    backend.reset()
    assert backend.worker.pid == pid and backend.images == {}
    with pytest.raises(ClientError):
        ec2.describe_vpcs(VpcIds=[vpc])
    assert ec2.describe_images(Owners=["self"])["Images"] == []


def test_images_are_registered_again_in_a_fresh_worker(backend):
    account = _account()
    first = backend.ensure_images(account, "us-east-1", ["img-a"])
    os.kill(backend.worker.pid, signal.SIGKILL)
    with pytest.raises(DriverError, match="died"):
        backend.ensure_images(account, "us-east-1", ["img-a"])
    again = backend.ensure_images(account, "us-east-1", ["img-a"])
    ec2 = backend.client(account, "us-east-1", "ec2")
    assert [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]] == [again["img-a"]]
    assert first is not again


def test_worker_exits_when_the_server_dies(tmp_path):
    """The worker of a SIGKILLed parent sees EOF (and its parent pid change) and exits."""
    code = textwrap.dedent("""
        import os, sys, time
        from mock_driver.moto_worker import MotoWorkerBackend
        b = MotoWorkerBackend()
        b.client("712345678901", "us-east-1", "ec2").describe_vpcs()
        print(b.worker.pid, flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        worker_pid = int(parent.stdout.readline())
        assert not _gone(worker_pid)
        parent.kill()
        parent.wait()
        assert _wait_gone(worker_pid, 10), "the worker outlived its parent"
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()


def test_mock_driver_close_stops_the_shared_worker(monkeypatch):
    import asyncio

    from mock_driver.driver import MockDriver
    from spider_core.drivers.base import ConnectionInfo

    if backends.inprocess_mode():
        pytest.skip("SPIDERTWIN_MOTO_INPROCESS=1: no worker")
    monkeypatch.setattr(MockDriver, "keep_backend_on_close", False)  # the test session keeps it

    async def go() -> int:
        conn = await MockDriver().connect(ConnectionInfo("MOCK", {"MockName": f"t-{uuid.uuid4().hex[:8]}"},
                                                         "default"))
        assert await conn.vpc.list_iid() == []
        backend = backends.get_backend()
        assert isinstance(backend, MotoWorkerBackend)
        pid = backend.worker.pid
        await MockDriver().close()
        return pid

    pid = asyncio.run(go())
    assert pid and _gone(pid)
    assert backends.current_backend() is None
    assert pid not in _children_named("mock_driver.moto_worker")


def test_inprocess_escape_hatch(monkeypatch):
    saved = backends.set_backend(None)
    try:
        monkeypatch.setenv("SPIDERTWIN_MOTO_INPROCESS", "1")
        assert backends.inprocess_mode()
        assert backends.get_backend() is MotoBackend.local()
        backends.set_backend(None)
        monkeypatch.setenv("SPIDERTWIN_MOTO_INPROCESS", "0")
        assert not backends.inprocess_mode()
    finally:
        backends.set_backend(saved)


def test_no_leftover_workers():
    """Every worker started by this module's backends is reaped (only the shared one may remain)."""
    shared = getattr(backends.current_backend(), "worker", None)
    keep = {shared.pid} if shared is not None and shared.pid else set()
    assert set(_children_named("mock_driver.moto_worker")) <= keep


def test_pipelined_calls_from_many_threads_each_get_their_own_answer(backend):
    from concurrent.futures import ThreadPoolExecutor
    account = _account()
    ec2 = backend.client(account, "us-east-1", "ec2")
    assert backend.executor._max_workers > 1  # several requests may be in the pipe at once

    def create(i: int) -> tuple[int, str, str]:
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=[
            {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": f"p{i}"}]}])["Vpc"]
        return i, vpc["VpcId"], vpc["Tags"][0]["Value"]

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(create, range(160)))
    assert all(name == f"p{i}" for i, _, name in results)  # every caller got its own answer
    ids = {vpc_id for _, vpc_id, _ in results}
    assert len(ids) == 160
    listed = {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")}
    assert listed == ids


def test_worker_killed_with_calls_in_the_pipe_fails_every_one(backend):
    import threading
    account = _account()
    ec2 = backend.client(account, "us-east-1", "ec2")
    ec2.describe_vpcs()  # started
    pid = backend.worker.pid
    os.kill(pid, signal.SIGSTOP)  # calls queue in the pipe while the worker is stopped
    errors: list[BaseException] = []

    def call() -> None:
        try:
            ec2.create_vpc(CidrBlock="10.0.0.0/16")
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    os.kill(pid, signal.SIGKILL)
    for t in threads:
        t.join(30)
    assert len(errors) == 6 and all(isinstance(e, DriverError) for e in errors)
    assert any("killed by SIGKILL" in str(e) for e in errors)
    assert _wait_gone(pid)
    fresh = [v for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")]
    assert fresh == []  # the next call starts a fresh worker with an empty cloud
