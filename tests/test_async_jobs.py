"""Async jobs over the REST API: submit (``?async=true`` / ``Prefer: respond-async``), read, long-poll,
list, cancel, bad input, and the same answers as the synchronous routes; on each MetaDB engine (SQLite,
and a real PostgreSQL selected by CB-Spider's SPIDER_METADB_* variables)."""

from __future__ import annotations

import asyncio

import pytest

from pg_helpers import fresh_database


@pytest.fixture(autouse=True, params=["sqlite", "postgres"])
def metadb_engine(request, monkeypatch):
    """Every test once per engine: the server under test reads SPIDER_METADB_* at start."""
    if request.param == "postgres":
        for key, value in fresh_database().items():
            monkeypatch.setenv(key, value)
    return request.param

NULL_CONNECTION = "null-config01"  # the null_server fixture's connection (tests/conftest.py)

VPC = {"Name": "vpc-a1", "IPv4_CIDR": "10.0.0.0/16", "SubnetInfoList": [{"Name": "s1", "IPv4_CIDR": "10.0.1.0/24"}]}


async def _wait(srv, job_id: str, seconds: float = 10) -> dict:
    reply = await srv.call("GET", f"job/{job_id}", params={"wait": str(seconds)})
    assert reply.status == 200, reply.text
    return reply.json


async def test_async_create_answers_202_then_the_sync_result(null_server):
    srv = null_server
    reply = await srv.call("POST", "vpc", srv.body(VPC), params={"async": "true"})
    assert reply.status == 202, reply.text
    job = reply.json
    assert job["Status"] == "queued" and job["Operation"] == "create" and job["Resource"] == "vpc"
    assert job["Name"] == "vpc-a1" and job["ConnectionName"] == NULL_CONNECTION and job["CreatedAt"]
    assert reply.headers["Location"] == f"/spider/job/{job['Id']}"
    done = await _wait(srv, job["Id"])
    assert done["Status"] == "done" and done["Error"] is None and done["FinishedAt"]
    assert done["Result"]["IId"]["NameId"] == "vpc-a1"
    assert [s["IId"]["NameId"] for s in done["Result"]["SubnetInfoList"]] == ["s1"]
    got = await srv.call("GET", "vpc/vpc-a1", params={"ConnectionName": NULL_CONNECTION})
    assert got.status == 200 and got.json["IId"] == done["Result"]["IId"]


async def test_prefer_header_and_failed_job_carries_cbspider_text(null_server):
    srv = null_server
    first = await srv.call("POST", "vpc", srv.body(VPC), headers={"Prefer": "respond-async"})
    assert first.status == 202 and first.headers["Preference-Applied"] == "respond-async"
    assert (await _wait(srv, first.json["Id"]))["Status"] == "done"
    again = await srv.call("POST", "vpc", srv.body(VPC), headers={"Prefer": "respond-async"})
    failed = await _wait(srv, again.json["Id"])
    assert failed["Status"] == "failed" and failed["Result"] is None
    assert failed["Error"] == f"VPC 'vpc-a1' already exists in connection '{NULL_CONNECTION}'"
    # the header is a preference: a read answers synchronously
    listed = await srv.call("GET", "vpc", params={"ConnectionName": NULL_CONNECTION},
                            headers={"Prefer": "respond-async"})
    assert listed.status == 200 and "vpc" in listed.json


async def test_delete_and_vm_control_run_as_jobs(null_server):
    srv = null_server
    await srv.call("POST", "vpc", srv.body(VPC))
    gone = await srv.call("DELETE", "vpc/vpc-a1", srv.body(), params={"async": "true"})
    assert gone.status == 202 and gone.json["Operation"] == "delete"
    assert (await _wait(srv, gone.json["Id"]))["Result"] == {"Result": "true"}
    control = await srv.call("PUT", "controlvm/nope", srv.body(), params={"async": "true", "action": "suspend"})
    assert control.status == 202 and control.json["Operation"] == "control-suspend"
    failed = await _wait(srv, control.json["Id"])
    assert failed["Status"] == "failed" and "does not exist" in failed["Error"]


async def test_bad_input_is_refused_before_a_job_exists(null_server):
    srv = null_server
    cases = [
        (await srv.call("POST", "vpc", {"ReqInfo": VPC}, params={"async": "true"}), 500, "ConnectionName is empty!"),
        (await srv.call("POST", "vpc", srv.body(VPC) | {"ConnectionName": "nope"}, params={"async": "true"}), 500,
         "nope: does not exist!"),
        (await srv.call("GET", "vpc", params={"ConnectionName": NULL_CONNECTION, "async": "true"}), 400,
         "async=true is for creates, deletes and VM control"),
        (await srv.call("POST", "vpc", srv.body(VPC), params={"async": "maybe"}), 400, "async: true or false"),
        (await srv.call("POST", "vpc", data="{not json", headers={"Content-Type": "application/json"},
                        params={"async": "true"}), 500, ""),
    ]
    for reply, status, text in cases:
        assert reply.status == status, reply.text
        assert text in reply.json["message"]
    assert (await srv.call("GET", "job")).json["job"] == []


async def test_list_filters_cancel_and_errors(null_server):
    srv = null_server
    sp = srv.sp
    sp.jobs._slots = asyncio.Semaphore(0)  # hold the runner: jobs stay queued
    ids = []
    for i in range(3):
        reply = await srv.call("POST", "keypair", srv.body({"Name": f"k{i}"}), params={"async": "true"})
        ids.append(reply.json["Id"])
    listed = (await srv.call("GET", "job", params={"ConnectionName": NULL_CONNECTION, "status": "queued"})).json
    assert [j["Id"] for j in listed["job"]] == ids[::-1]
    cancelled = await srv.call("DELETE", f"job/{ids[0]}")
    assert cancelled.status == 200 and cancelled.json["Status"] == "cancelled"
    again = await srv.call("DELETE", f"job/{ids[0]}")
    assert again.status == 409 and "already finished (cancelled)" in again.json["message"]
    assert (await srv.call("GET", "job/job-nope")).status == 404
    assert (await srv.call("GET", "job", params={"status": "sleeping"})).status == 400
    assert (await srv.call("GET", f"job/{ids[1]}", params={"wait": "-1"})).status == 400
    # a long-poll of a job that does not finish returns after its wait, still queued
    polled = await srv.call("GET", f"job/{ids[1]}", params={"wait": "0.2"})
    assert polled.json["Status"] == "queued"
    for _ in range(sp.jobs.workers):
        sp.jobs._slots.release()
    assert (await _wait(srv, ids[1]))["Status"] == "done"
    assert (await _wait(srv, ids[2]))["Status"] == "done"
    assert (await srv.call("GET", f"keypair/k0", params={"ConnectionName": NULL_CONNECTION})).status == 500


async def test_healthz_readyz_and_metrics(null_server):
    srv = null_server
    for _ in range(50):
        if (await srv.call("GET", "readyz")).status == 200:
            break
        await asyncio.sleep(0.05)
    assert (await srv.call("GET", "readyz")).json == {"message": "CB-Spider is ready"}
    assert (await srv.call("GET", "healthz")).json["message"] == "alive"
    await srv.call("POST", "vpc", srv.body(VPC))
    job = (await srv.call("POST", "keypair", srv.body({"Name": "k-m"}), params={"async": "true"})).json
    await _wait(srv, job["Id"])
    text = (await srv.call("GET", "metrics")).text
    for needle in ('spider_http_requests_total{method="POST",route="/spider/vpc",status="200"} 1.0',
                   'spider_http_request_duration_seconds_bucket{le="0.001",method="POST",route="/spider/vpc"}',
                   'spider_lock_wait_seconds_count{family="vpc"}',
                   'spider_lock_holders', 'spider_limiter_inflight{connection="null-config01"} 0.0',
                   'spider_admission_inflight{scope="server"}', 'spider_jobs{status="queued"} 0.0',
                   'spider_jobs_finished_total{origin="async",status="done"} 1.0', 'spider_open_intents 0.0',
                   'spider_ready 1.0'):
        assert needle in text, needle
    srv.sp.phase = "draining"
    assert (await srv.call("GET", "readyz")).status == 503
    refused = await srv.call("POST", "vpc", srv.body(VPC))
    assert refused.status == 503 and "shutting down" in refused.json["message"] and refused.headers["Retry-After"]
    assert (await srv.call("GET", "healthz")).status == 200
    srv.sp.phase = "ready"


def test_python_client_and_spctl_submit_and_wait(spider_process, capsys):
    import json

    from spider_core import spctl
    from spider_core.client import SpiderClient

    srv = spider_process()
    with SpiderClient(srv.base) as sync:
        sync.register_driver({"DriverName": "null-driver01", "ProviderName": "NULL",
                              "DriverLibFileName": "null-driver-v1.0.so"})
        sync.register_credential({"CredentialName": "null-cred", "ProviderName": "NULL",
                                  "KeyValueInfoList": [{"Key": "Name", "Value": "c1"}]})
        sync.register_region({"RegionName": "null-region01", "ProviderName": "NULL",
                              "KeyValueInfoList": [{"Key": "Region", "Value": "null-region"}]})
        sync.create_connection_config({"ConfigName": NULL_CONNECTION, "ProviderName": "NULL",
                                       "DriverName": "null-driver01", "CredentialName": "null-cred",
                                       "RegionName": "null-region01"})
    with SpiderClient(srv.base, asynchronous=True) as client:
        job = client.create_vpc(NULL_CONNECTION, VPC)
        assert job["Status"] in ("queued", "running", "done") and job["Operation"] == "create"
        done = client.wait_job(job["Id"], timeout=30)
        assert done["Status"] == "done" and done["Result"]["IId"]["NameId"] == "vpc-a1"
        assert client.list_vpc(NULL_CONNECTION)["vpc"][0]["IId"]["NameId"] == "vpc-a1"  # reads stay synchronous
    server = f"127.0.0.1:{srv.port}"
    body = json.dumps({"ConnectionName": NULL_CONNECTION, "ReqInfo": {"Name": "k-spctl"}})
    assert spctl.main(["-s", server, "--async", "keypair", "create", "-d", body]) == 0
    submitted = json.loads(capsys.readouterr().out)
    assert submitted["Resource"] == "keypair" and submitted["Name"] == "k-spctl"
    assert spctl.main(["-s", server, "job", "wait", "--Id", submitted["Id"]]) == 0
    assert json.loads(capsys.readouterr().out)["Status"] == "done"
    assert spctl.main(["-s", server, "job", "list", "-c", NULL_CONNECTION, "--status", "done"]) == 0
    assert len(json.loads(capsys.readouterr().out)["job"]) == 2
    assert spctl.main(["-s", server, "--async", "vpc", "list", "-c", NULL_CONNECTION]) == 1
    assert "async=true is for creates" in json.loads(capsys.readouterr().out)["message"]
