"""CSP call history: every driver call recorded with CB-Spider's fields, readable as JSON and as
HISCALL lines, with secrets scrubbed."""

from __future__ import annotations

import re

from spider_core.calllog import CallLog, call_log, scrub

VPC_REQ = {"Name": "vpc-log", "IPv4_CIDR": "10.9.0.0/16",
           "SubnetInfoList": [{"Name": "subnet-log", "IPv4_CIDR": "10.9.1.0/24"}]}


def test_scrub_removes_secrets():
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----"
    text = scrub(f"failed: {pem} password=hunter2 key AKIAABCDEFGHIJKLMNOP secret: s3cr3t")
    assert "MIIEabc" not in text and "hunter2" not in text and "AKIAABCDEFGHIJKLMNOP" not in text
    assert "s3cr3t" not in text
    assert "<private key removed>" in text


def test_line_format_and_rotation_file(tmp_path):
    log = CallLog(capacity=10)
    log.configure(tmp_path)
    log.record(cloud_os="AWS", region_zone="us-east-1/us-east-1a", resource_type="VM", resource_name="vm-01",
               api="CB-Spider:StartVM()", elapsed=2.02014, error="")
    log.configure(None)  # flush and close the file handler
    line = (tmp_path / "calllogs.log").read_text().strip()
    assert re.match(r'^\[HISCALL\]\.\[[^\]]+\] \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(\w+day\) \S+ - "CloudOS" : "AWS", '
                    r'"RegionZone" : "us-east-1/us-east-1a", "ResourceType" : "VM", "ResourceName" : "vm-01", '
                    r'"CloudOSAPI" : "CB-Spider:StartVM\(\)", "ElapsedTime" : "2.0201", "ErrorMSG" : ""$', line), line


def test_ring_is_bounded_and_filters():
    log = CallLog(capacity=3)
    for i in range(5):
        log.record(cloud_os="MOCK", region_zone="r/", resource_type="VPC/SUBNET", resource_name=f"v{i}",
                   api="CreateVpc", elapsed=0.001, error="boom" if i == 4 else "", connection="c")
    assert [r["ResourceName"] for r in log.query()] == ["v2", "v3", "v4"]
    assert [r["ResourceName"] for r in log.query(errors_only=True)] == ["v4"]
    assert log.query(resource_name="v3")[0]["seq"] == 4
    assert [r["ResourceName"] for r in log.query(since_seq=4)] == ["v4"]
    assert log.query(cloud_os="aws") == []


async def test_driver_calls_reach_the_endpoint(mock_server):
    since = (call_log.query(limit=1) or [{"seq": 0}])[-1]["seq"]
    reply = await mock_server.call("POST", "vpc", mock_server.body(VPC_REQ))
    assert reply.status == 200, reply.text
    reply = await mock_server.call("GET", "calllog", params={"since": str(since), "connection": mock_server.conn})
    assert reply.status == 200
    records = reply.json["calllog"]
    apis = [r["CloudOSAPI"] for r in records]
    assert "create_vpc" in apis and "create_subnet" in apis, apis
    for rec in records:
        assert rec["CloudOS"] == "MOCK"
        assert rec["ResourceType"] == "VPC/SUBNET"
        assert re.match(r"^\d+\.\d{4}$", rec["ElapsedTime"])
        assert list(rec)[:7] == ["CloudOS", "RegionZone", "ResourceType", "ResourceName", "CloudOSAPI",
                                 "ElapsedTime", "ErrorMSG"]
    bad = await mock_server.call("GET", "calllog", params={"limit": "x"})
    assert bad.status == 400 and "limit" in bad.json["message"]


async def test_keypair_private_key_never_in_calllog(mock_server):
    since = (call_log.query(limit=1) or [{"seq": 0}])[-1]["seq"]
    reply = await mock_server.call("POST", "keypair", mock_server.body({"Name": "key-log"}))
    assert reply.status == 200, reply.text
    private = reply.json["PrivateKey"]
    assert "PRIVATE KEY" in private
    records = call_log.query(since_seq=since)
    assert records, "the key pair create was not recorded"
    assert all(private not in str(r) and "PRIVATE KEY" not in str(r) for r in records)


def test_file_writer_keeps_every_line_in_order_across_rotations(tmp_path):
    """Lines are written by a background thread in batches: after ``flush`` every record from every
    thread is in the files, rotation loses none, and each thread's own lines keep their order."""
    import threading

    log = CallLog(capacity=10)
    log.configure(tmp_path, max_bytes=20_000, backups=50)

    def burst(t: int) -> None:
        for i in range(300):
            log.record(cloud_os="MOCK", region_zone="r/", resource_type="VM", resource_name=f"t{t}-{i}",
                       api="CreateVM", elapsed=0.0, error="")

    threads = [threading.Thread(target=burst, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    log.flush()
    files = sorted(tmp_path.glob("calllogs.log*"), key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0)
    assert len(files) >= 10, "1,200 lines of ~250 bytes rotate through 20 kB files"
    assert all(f.stat().st_size < 20_000 + 64 * 400 for f in files), "over by one chunk at most"
    names = [re.search(r'"ResourceName" : "([^"]+)"', line).group(1)
             for f in files for line in f.read_text().splitlines()]
    assert len(names) == 1200 and len(set(names)) == 1200
    for t in range(4):
        assert [n for n in names if n.startswith(f"t{t}-")] == [f"t{t}-{i}" for i in range(300)]
    log.configure(None)


def test_a_process_that_exits_without_closing_the_log_loses_no_line(tmp_path):
    import subprocess
    import sys

    code = ("from pathlib import Path; from spider_core.calllog import CallLog\n"
            f"log = CallLog(); log.configure(Path({str(tmp_path)!r}))\n"
            "for i in range(500):\n"
            "    log.record(cloud_os='MOCK', region_zone='r/', resource_type='VM', resource_name=f'v{i}',\n"
            "               api='CreateVM', elapsed=0.0)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    lines = (tmp_path / "calllogs.log").read_text().splitlines()
    assert len(lines) == 500 and '"ResourceName" : "v499"' in lines[-1]
