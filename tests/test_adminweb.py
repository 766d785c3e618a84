"""AdminWeb without a browser: every page renders, Basic auth guards it, forms refuse a missing or wrong
CSRF token, user strings are escaped, tables page, Spider's errors are messages, and the report viewers
read ``reports.writer``'s directories. (``test_adminweb_browser.py`` drives the same pages in Chromium.)"""

from __future__ import annotations

import asyncio
import base64
import html as html_lib
import re
from datetime import datetime, timezone
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from reports.model import CaseResult, LatencyChart, MetricsTable, SgCase, SgCell, SgSuite, SuiteResult, compare
from reports.writer import write_reports
from spider_core.rest.app import create_app
from spider_core.model import IID, ConnectionConfigInfo, DiskInfo, KeyValue
from spider_core.services import common, connection, disk, keypair, myimage, publicip, security, vm, vpc

CONN = "null-config01"  # the null_server fixture's connection (tests/conftest.py)
BASE = "/spider/adminweb"
HOSTILE = "<script>alert(1)</script>"
TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


async def page(client: TestClient, path: str) -> tuple[int, str]:
    async with client.get(path) as resp:
        return resp.status, await resp.text()


async def token(client: TestClient, path: str = BASE + "/driver") -> str:
    """Load a page (which sets the session cookie) and read its forms' CSRF token."""
    status, html = await page(client, path)
    assert status == 200, html
    return TOKEN.search(html).group(1)


def rows(html: str) -> list[str]:
    return re.findall(r'<tr data-name="([^"]*)"', html)


async def test_every_page_renders(null_server):
    client = null_server.client
    pages = ["", "/driver", "/credential", "/region", "/connectionconfig", "/createresources", "/calllog", "/locks",
             "/jobs", "/twin", "/reports", "/calllog?fragment=1", "/locks?fragment=1", "/jobs?fragment=1"]
    pages += [f"/{p}/{CONN}" for p in ("vpc", "securitygroup", "keypair", "vm", "disk", "myimage", "publicip", "nlb",
                                      "vmimage", "vmspec", "regionzone")]
    pages += [f"/mgmt/{p}/{CONN}" for p in ("vpc", "securitygroup", "keypair", "vm", "disk", "myimage", "publicip",
                                           "nlb")]
    for path in pages:
        async with client.get(BASE + path) as resp:
            html = await resp.text()
            assert resp.status == 200, (path, html[:500])
            assert resp.content_type == "text/html", path
            assert "Traceback" not in html and 'id="error"' not in html, (path, html[:2000])
    status, html = await page(client, f"{BASE}/vmimage/{CONN}")
    assert "null-image-01" in html
    async with client.get(BASE + "/static/adminweb.js") as resp:
        assert resp.status == 200 and "data-live" in await resp.text()


async def test_session_cookie_is_httponly_and_samesite_strict(null_server):
    async with null_server.client.get(BASE) as resp:
        cookie = resp.headers["Set-Cookie"]
    assert "spider_adminweb_session=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path=/spider/adminweb" in cookie


async def test_forms_refuse_a_missing_or_wrong_csrf_token(spider, null_server):
    form = {"Name": "vpc-csrf", "IPv4_CIDR": "10.0.0.0/16", "SubnetName": "s1", "SubnetCIDR": "10.0.1.0/24",
            "SubnetZone": ""}
    url = f"{BASE}/vpc/{CONN}"
    # no session cookie at all (a fresh client)
    bare = TestClient(TestServer(create_app(spider)))
    await bare.start_server()
    try:
        async with bare.post(url, data={**form, "csrf_token": "0" * 64}, allow_redirects=False) as resp:
            assert resp.status == 403
            assert "without the AdminWeb session cookie" in await resp.text()
    finally:
        await bare.close()
    client = null_server.client
    good = await token(client)
    altered = good[:-1] + ("1" if good[-1] == "0" else "0")
    for bad in ({}, {"csrf_token": ""}, {"csrf_token": "f" * 64}, {"csrf_token": altered}):
        async with client.post(url, data={**form, **bad}, allow_redirects=False) as resp:
            html = await resp.text()
            assert resp.status == 403, bad
            assert "CSRF token is missing or wrong" in html
    async with client.post(url, data={**form, "csrf_token": good}, allow_redirects=False,
                           headers={"Origin": "http://evil.example"}) as resp:
        assert resp.status == 403 and "posted from another site" in await resp.text()
    assert await vpc.list_all(spider, CONN) == []   # nothing was created by a refused form
    async with client.post(url, data={**form, "csrf_token": good, "next": url}, allow_redirects=False) as resp:
        assert resp.status == 303 and resp.headers["Location"] == url
    assert [v.iid.name_id for v in await vpc.list_all(spider, CONN)] == ["vpc-csrf"]


async def test_basic_auth_guards_every_page(spider, null_server):
    client = TestClient(TestServer(create_app(spider, username="admin", password="s3cret")))
    await client.start_server()
    try:
        for path in (BASE, f"{BASE}/vpc/{CONN}", f"{BASE}/static/adminweb.css", f"{BASE}/reports"):
            async with client.get(path) as resp:
                assert resp.status == 401, path
        async with client.post(f"{BASE}/driver", data={"DriverName": "x", "ProviderName": "NULL"}) as resp:
            assert resp.status == 401
        auth = {"Authorization": "Basic " + base64.b64encode(b"admin:wrong").decode()}
        async with client.get(BASE, headers=auth) as resp:
            assert resp.status == 401
        auth = {"Authorization": "Basic " + base64.b64encode(b"admin:s3cret").decode()}
        async with client.get(f"{BASE}/vpc/{CONN}", headers=auth) as resp:
            html = await resp.text()
            assert resp.status == 200 and "VPC / Subnet" in html
        # authenticated, but a form still needs its CSRF token
        async with client.post(f"{BASE}/driver", headers=auth, allow_redirects=False,
                               data={"DriverName": "x", "ProviderName": "NULL"}) as resp:
            assert resp.status == 403
    finally:
        await client.close()


async def test_user_strings_are_escaped_everywhere(spider, null_server):
    client = null_server.client
    await vpc.create(spider, CONN, {"Name": HOSTILE, "IPv4_CIDR": "10.0.0.0/16",
                                    "SubnetInfoList": [{"Name": HOSTILE + "-s", "IPv4_CIDR": "10.0.1.0/24"}]}, None)
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    for path in (f"/vpc/{CONN}", f"/securitygroup/{CONN}", f"/mgmt/vpc/{CONN}", f"/vm/{CONN}"):
        status, html = await page(client, BASE + path)
        assert status == 200
        assert escaped in html, path
        assert HOSTILE not in html, path
    assert rows((await page(client, f"{BASE}/vpc/{CONN}"))[1]) == [escaped]
    # the name comes back in a flash message (an error: it exists already) and in an error page
    good = await token(client)
    form = {"Name": HOSTILE, "IPv4_CIDR": "10.0.0.0/16", "csrf_token": good, "next": f"{BASE}/vpc/{CONN}"}
    async with client.post(f"{BASE}/vpc/{CONN}", data=form) as resp:
        html = await resp.text()
    assert "already exists" in html and HOSTILE not in html and escaped in html
    img = "<img src=x onerror=alert(1)>"   # a connection name (no "/": it is a path segment)
    status, html = await page(client, f"{BASE}/vpc/{img}")
    assert "does not exist" in html and img not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "script-src 'self'" in (await client.get(BASE)).headers["Content-Security-Policy"]


async def test_tables_page_on_the_server(spider, null_server):
    for i in range(45):
        await keypair.create(spider, CONN, {"Name": f"key-{i:02d}"}, None)
    client = null_server.client
    status, html = await page(client, f"{BASE}/keypair/{CONN}?size=20")
    assert rows(html) == [f"key-{i:02d}" for i in range(20)]
    assert "45 key pairs, page 1 of 3" in html
    status, html = await page(client, f"{BASE}/keypair/{CONN}?size=20&page=3")
    assert rows(html) == [f"key-{i:02d}" for i in range(40, 45)]
    status, html = await page(client, f"{BASE}/keypair/{CONN}?size=20&page=99")   # past the end: the last page
    assert rows(html) == [f"key-{i:02d}" for i in range(40, 45)]
    status, html = await page(client, f"{BASE}/keypair/{CONN}?q=KEY-3")            # filter, any case
    assert rows(html) == [f"key-3{i}" for i in range(10)]
    status, html = await page(client, f"{BASE}/keypair/{CONN}?size=abc&page=-1")   # nonsense: defaults
    assert len(rows(html)) == 45


async def test_spider_errors_are_messages_not_tracebacks(spider, null_server):
    client = null_server.client
    good = await token(client)
    # a VM on things that do not exist: CB-Spider's message comes back as the page's flash
    form = {"Name": "vm-x", "ImageName": "null-image-01", "VMSpecName": "null-spec-01", "Subnet": '["nope", "nope"]',
            "SecurityGroupNames": "sg-nope", "KeyPairName": "key-nope", "csrf_token": good,
            "next": f"{BASE}/vm/{CONN}"}
    async with client.post(f"{BASE}/vm/{CONN}", data=form) as resp:
        html = await resp.text()
        assert resp.status == 200
    assert "does not exist in connection" in html and 'class="flash error"' in html
    # a malformed field is a clear message too
    async with client.post(f"{BASE}/vm/{CONN}", data={**form, "Subnet": "not json"}) as resp:
        assert "VPC / Subnet: choose one from the list" in await resp.text()
    async with client.post(f"{BASE}/vm/{CONN}/control", data={"csrf_token": good, "verb": "explode", "name": "vm-x",
                                                               "next": f"{BASE}/vm/{CONN}"}) as resp:
        assert "explode is not a valid action!!" in await resp.text()
    status, html = await page(client, f"{BASE}/mgmt/nothing/{CONN}")
    assert status == 404
    # an open redirect through "next" is refused: back to AdminWeb's main page
    async with client.post(f"{BASE}/driver/delete", data={"csrf_token": good, "next": "https://evil.example/"},
                           allow_redirects=False) as resp:
        assert resp.headers["Location"] == BASE


async def post_form(client: TestClient, path: str, fields: dict | list, back: str = "") -> str:
    """Post a form with the session's token; answer the text of the page it leads to (its flash)."""
    good = await token(client)
    data = list(fields.items()) if isinstance(fields, dict) else list(fields)
    if not back:   # the page the form is on: /vpc/{conn} for /vpc/{conn}/subnet, /mgmt/vpc/{conn} for its delete
        back = BASE + ("/".join(path.split("/")[:3]) if not path.startswith("/mgmt/") else path.rsplit("/", 1)[0])
    async with client.post(BASE + path, data=[*data, ("csrf_token", good), ("next", back)]) as resp:
        html = await resp.text()
        assert resp.status == 200, html
    flash = re.search(r'id="flash">([^<]*)<', html)
    return html_lib.unescape(flash.group(1)) if flash else ""


async def test_resource_forms_on_null(spider, null_server):
    client = null_server.client
    vpc_path, sg_path, vm_path = f"/vpc/{CONN}", f"/securitygroup/{CONN}", f"/vm/{CONN}"
    assert "created" in await post_form(client, vpc_path, [
        ("Name", "vpc-a"), ("IPv4_CIDR", "10.0.0.0/16"), ("SubnetName", "s1"), ("SubnetCIDR", "10.0.1.0/24"),
        ("SubnetZone", ""), ("SubnetName", "s2"), ("SubnetCIDR", "10.0.2.0/24"), ("SubnetZone", "")])
    assert "added to VPC" in await post_form(client, f"{vpc_path}/subnet", {"VPCName": "vpc-a", "Name": "s3",
                                                                              "IPv4_CIDR": "10.0.3.0/24"})
    assert "removed from VPC" in await post_form(client, f"{vpc_path}/subnet/delete", {"Subnet": '["vpc-a", "s2"]'})
    assert [s.iid.name_id for s in (await vpc.get(spider, CONN, "vpc-a")).subnets] == ["s1", "s3"]

    rule = {"Direction": "inbound", "IPProtocol": "TCP", "FromPort": "80", "ToPort": "80", "CIDR": "10.0.0.0/8"}
    assert "created with 1 rule" in await post_form(client, sg_path, {"Name": "sg-a", "VPCName": "vpc-a", **rule})
    assert "Rule added" in await post_form(client, f"{sg_path}/rules", {"SGName": "sg-a", "verb": "add",
                                                                          **rule, "FromPort": "443", "ToPort": "443"})
    assert "Rule removed" in await post_form(client, f"{sg_path}/rules", {"SGName": "sg-a", "verb": "remove", **rule})
    ports = [(r.from_port, r.to_port) for r in (await security.get(spider, CONN, "sg-a")).rules]
    assert ports == [("443", "443")]
    assert "Give a rule" in await post_form(client, f"{sg_path}/rules", {"SGName": "sg-a", "verb": "add"})

    await keypair.create(spider, CONN, {"Name": "key-a"}, None)
    started = await post_form(client, vm_path, {
        "Name": "vm-a", "ImageName": "null-image-01", "VMSpecName": "null-spec-01", "Subnet": '["vpc-a", "s1"]',
        "SecurityGroupNames": "sg-a", "KeyPairName": "key-a"})
    assert "VM 'vm-a' started" in started
    suspended = await post_form(client, f"{vm_path}/control", {"verb": "suspend", "name": "vm-a"})
    assert "Suspend: vm-a: Suspending" in suspended
    status, html = await page(client, BASE + vm_path)
    assert 'class="status status-suspended">Suspended<' in html
    assert "created" in await post_form(client, f"/nlb/{CONN}", {
        "Name": "nlb-a", "VPCName": "vpc-a", "ListenerProtocol": "TCP", "ListenerPort": "80", "VMGroupProtocol": "TCP",
        "VMGroupPort": "80", "VMs": "vm-a", "HCProtocol": "TCP", "HCPort": "80"})
    status, html = await page(client, f"{BASE}/nlb/{CONN}")
    assert rows(html) == ["nlb-a"] and "TCP:80 → vm-a" in html
    assert "Deleted NLB: nlb-a" in await post_form(client, f"/nlb/{CONN}/delete", {"name": "nlb-a"})
    # one failure does not stop the others, and both are reported
    report = await post_form(client, f"/securitygroup/{CONN}/delete", [("name", "sg-a"), ("name", "sg-nope")])
    assert "Failed: sg-a:" in report and "sg-nope:" in report and "Deleted: none" in report
    assert "Terminate: vm-a: Terminat" in await post_form(client, f"{vm_path}/control", {"verb": "terminate",
                                                                                           "name": "vm-a"})
    # MetaDB vs CSP: a row whose resource is gone at the CSP is "Spider only", deleted by name with force
    await vpc.create(spider, CONN, {"Name": "vpc-gone", "IPv4_CIDR": "10.9.0.0/16", "SubnetInfoList": []}, None)
    conn = await spider.connection(CONN)
    gone = await spider.db.get_iid(CONN, "vpc", "vpc-gone")
    from spider_core.services.common import driver_iid
    await conn.cloud.vpc.delete_vpc(driver_iid(gone))
    status, html = await page(client, f"{BASE}/mgmt/vpc/{CONN}")
    assert re.search(r"<td>Spider only</td><td>vpc-gone</td>", html)
    assert "Deleted VPC: vpc-gone" in await post_form(client, f"/mgmt/vpc/{CONN}/delete", {"name": "vpc-gone"})
    assert await spider.db.get_iid(CONN, "vpc", "vpc-gone") is None


async def test_create_resources_on_several_connections_at_once(spider, null_server):
    config = await connection.get_connection(spider, CONN)
    await connection.register_connection(spider, ConnectionConfigInfo("null-config02", "NULL", config.driver_name,
                                                                      config.credential_name, config.region_name))
    client = null_server.client
    status, html = await page(client, f"{BASE}/createresources")
    assert 'name="image:null-config02"' in html and "null-spec-01" in html
    form = {"csrf_token": TOKEN.search(html).group(1), "prefix": "mc", "conn": [CONN, "null-config02"],
            "vpc_cidr": "10.5.0.0/16", "subnet_cidr": "10.5.1.0/24"}
    for conn in (CONN, "null-config02"):
        form[f"image:{conn}"], form[f"spec:{conn}"] = "null-image-01", "null-spec-01"
    data = [(k, v) for k, values in form.items() for v in (values if isinstance(values, list) else [values])]
    async with client.post(f"{BASE}/createresources", data=data) as resp:
        html = await resp.text()
    assert "Resources created on 2 of 2 connection(s)" in html
    steps = re.findall(r'<tr class="(ok|bad)"><td>([^<]+)</td><td>([^<]+)</td>', html)
    assert sorted(steps) == sorted(("ok", c, s) for c in (CONN, "null-config02")
                                   for s in ("VPC", "Security group", "Key pair", "VM"))
    for conn in (CONN, "null-config02"):
        assert [v.iid.name_id for v in await vm.list_all(spider, conn)] == ["mc-vm"]
    # a second run stops at the first step on each connection (the VPC exists) and says so
    async with client.post(f"{BASE}/createresources", data=data) as resp:
        html = await resp.text()
    assert "Resources created on 0 of 2 connection(s)" in html and html.count("already exists") == 2


async def test_jobs_page_lists_async_jobs(spider, null_server):
    body = null_server.body({"Name": "vpc-job", "IPv4_CIDR": "10.0.0.0/16", "SubnetInfoList": []})
    reply = await null_server.call("POST", "vpc", body, params={"async": "true"})
    assert reply.status == 202
    job_id = reply.json["Id"]
    await spider.jobs.wait(job_id, 30)
    status, html = await page(null_server.client, f"{BASE}/jobs?status=done")
    assert job_id in html and "vpc-job" in html
    status, html = await page(null_server.client, f"{BASE}/jobs?status=failed")
    assert job_id not in html
    # a finished job cannot be cancelled: the runner's message comes back
    message = await post_form(null_server.client, "/jobs/cancel", {"id": job_id}, back=f"{BASE}/jobs")
    assert message == f"job '{job_id}' has already finished (done)"


async def test_vm_form_copes_with_long_or_slow_image_lists(null_server, monkeypatch):
    from spider_core.adminweb import routes_resources
    from spider_core.model import IID, ImageInfo
    from spider_core.services import catalog

    async def many(sp, conn):
        return [ImageInfo(IID(f"img-{i:04d}", f"ami-{i:04d}")) for i in range(1500)]

    monkeypatch.setattr(catalog, "list_image", many)
    status, html = await page(null_server.client, f"{BASE}/vm/{CONN}")
    assert '<input name="ImageName" list="image-list" value="img-0000"' in html
    assert html.count('<option value="img-') == routes_resources.CHOICES_SHOWN and "1000 of 1500 suggested" in html

    async def slow(sp, conn):
        await asyncio.sleep(5)

    monkeypatch.setattr(catalog, "list_image", slow)
    monkeypatch.setattr(routes_resources, "CHOICE_TIMEOUT", 0.05)
    status, html = await page(null_server.client, f"{BASE}/vm/{CONN}")
    assert "no answer within 0.05 s: type a name" in html and '<input name="ImageName"' in html
    assert '<select name="VMSpecName"' in html    # the specs answered


async def test_twin_page_uses_the_twin_a_cloudtwin_credential_names(spider, null_server):
    await connection.register_credential(spider, "twin-cred", "CLOUDTWIN", [
        KeyValue("IdentityEndpoint", "http://127.0.0.1:9/v3"), KeyValue("DomainName", "cloud-1"),
        KeyValue("MockName", "p")])
    status, html = await page(null_server.client, f"{BASE}/twin")
    assert "Cannot reach Cloud-Twin at http://127.0.0.1:9" in html   # the registered one is used by default


async def test_twin_page_needs_a_local_or_registered_twin(null_server):
    status, html = await page(null_server.client, f"{BASE}/twin")
    assert "No Cloud-Twin known" in html
    status, html = await page(null_server.client, f"{BASE}/twin?twin=http://203.0.113.9:8192")
    assert "only a twin on this machine" in html
    status, html = await page(null_server.client, f"{BASE}/twin?twin=http://127.0.0.1:9")   # nothing listens
    assert "Cannot reach Cloud-Twin at http://127.0.0.1:9" in html


def sg_suite() -> SgSuite:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    cells = [SgCell("I:TCP-01 (22)", "pass", "pass", "pass"), SgCell("I:TCP-02 (1000)", "fail", "fail", "pass"),
             SgCell("I:UDP-01 (2000)", "skip", "pass", "skip", ran=False)]
    case = SgCase("01", "01.inbound-case-01.sh", "cloudtwin", when, cells, description=f"AddRules {HOSTILE}")
    return SgSuite("cbspider-inbound", "cloudtwin", "cloudtwin-cloud-1-config", when, [case], prober="model")


def load_suite() -> SuiteResult:
    suite = SuiteResult("load-vm", target="mock-config01", started_at=datetime.now(timezone.utc))
    suite.tables.append(MetricsTable("Requests", ["Name", "p95 (ms)"], [["POST /vm", 12.5]]))
    suite.charts.append(LatencyChart("Latency", {"p95": [(0.0, 10.0), (1.0, 12.0)]}, slug="latency"))
    suite.cases.append(CaseResult("c1", "thresholds", checks=[compare("failures", 0, 0)]))
    return suite


async def test_report_viewers(null_server, tmp_path, monkeypatch):
    sg_dir, load_dir = tmp_path / "runs" / "sg", tmp_path / "runs" / "load"
    write_reports(sg_suite(), sg_dir)
    write_reports(load_suite(), load_dir)
    (load_dir / "locust-report.html").write_text("<html><HEAD><title>r</title></HEAD><script>1</script></html>")
    (load_dir / "chart.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (load_dir / "latency.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    monkeypatch.setenv("SPIDER_REPORT_DIRS", str(tmp_path))
    client = null_server.client
    status, html = await page(client, f"{BASE}/reports")
    listed = re.findall(r'<a href="/spider/adminweb/reports/([^"]+)">[^<]*</a></td><td>(\w+)</td>', html)
    ids = {kind: rid for rid, kind in listed}
    assert set(ids) == {"sgtest", "load"}
    status, html = await page(client, f"{BASE}/reports/{ids['sgtest']}")
    cells = re.findall(r'<td class="cell ([a-z ]+)"[^>]*>\s*([a-z]+ / [a-z]+ / [a-z]+)</td>', html)
    assert cells == [("ok", "pass / pass / pass"), ("mismatch", "fail / fail / pass"),
                     ("ok skip", "skip / pass / skip")]
    assert "&lt;script&gt;" in html and HOSTILE not in html
    status, html = await page(client, f"{BASE}/reports/{ids['load']}")
    assert "POST /vm" in html and "12.5" in html and "locust-report.html" in html
    assert f'src="/spider/adminweb/reports/{ids["load"]}/file/chart.png"' in html        # a PNG-only chart
    assert f'src="/spider/adminweb/reports/{ids["load"]}/file/latency.svg"' in html      # SVG shown first
    async with client.get(f"{BASE}/reports/{ids['load']}/file/chart.png") as resp:
        assert resp.status == 200 and resp.content_type == "image/png"
    async with client.get(f"{BASE}/reports/{ids['load']}/file/locust-report.html") as resp:
        assert resp.status == 200 and resp.headers["Content-Security-Policy"] == "sandbox allow-scripts"
        served = await resp.text()
    assert served.startswith("<html><HEAD><script>try{window.localStorage}")   # Locust's report needs storage
    assert served.endswith("</script><title>r</title></HEAD><script>1</script></html>")
    for bad in ("..%2F..%2Fetc%2Fpasswd", ".hidden", "nothing.png", "result.pyc"):
        async with client.get(f"{BASE}/reports/{ids['load']}/file/{bad}") as resp:
            assert resp.status == 404, bad
    outside = base64.urlsafe_b64encode(b"/etc").decode().rstrip("=")
    status, html = await page(client, f"{BASE}/reports/{outside}")
    assert "No report directory" in html


async def test_adminweb_off(spider, monkeypatch):
    monkeypatch.setenv("ADMINWEB", "OFF")
    client = TestClient(TestServer(create_app(spider)))
    await client.start_server()
    try:
        async with client.get(BASE) as resp:
            assert resp.status == 404
    finally:
        await client.close()


def test_templates_and_static_files_are_package_data():
    import tomllib
    root = Path(__file__).resolve().parents[1]
    data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = data["spider_core.adminweb"]
    package = root / "spider_core" / "adminweb"
    shipped = {p for pattern in patterns for p in package.glob(pattern)}
    wanted = {p for p in package.rglob("*") if p.is_file() and p.suffix in (".j2", ".css", ".js")}
    assert wanted and wanted <= shipped


async def null_vm(spider, name: str = "vm-d") -> None:
    """A running VM on the NULL connection (its VPC, security group and key pair made through the services)."""
    await vpc.create(spider, CONN, {"Name": "vpc-d", "IPv4_CIDR": "10.0.0.0/16",
                                    "SubnetInfoList": [{"Name": "s1", "IPv4_CIDR": "10.0.1.0/24"}]}, None)
    await security.create(spider, CONN, {"Name": "sg-d", "VPCName": "vpc-d", "SecurityRules": []}, None)
    await keypair.create(spider, CONN, {"Name": "key-d"}, None)
    await vm.start(spider, CONN, {"Name": name, "ImageName": "null-image-01", "VMSpecName": "null-spec-01",
                                  "VPCName": "vpc-d", "SubnetName": "s1", "SecurityGroupNames": ["sg-d"],
                                  "KeyPairName": "key-d"}, None)


async def test_disk_and_myimage_pages_on_null(spider, null_server):
    client = null_server.client
    await null_vm(spider)
    disk_path, image_path = f"/disk/{CONN}", f"/myimage/{CONN}"
    created = await post_form(client, disk_path, {"Name": "disk-a", "DiskType": "", "DiskSize": "50", "Zone": ""})
    assert "Disk 'disk-a' created" in created and "50 GB" in created
    status, html = await page(client, BASE + disk_path)
    assert status == 200 and rows(html) == ["disk-a"]
    assert f'href="{BASE}/disk/{CONN}" class="on"' in html      # linked, and marked, in the connection's menu
    assert "Disk 'disk-a' attached to VM 'vm-d'" in await post_form(
        client, f"{disk_path}/attach", {"DiskName": "disk-a", "VMName": "vm-d", "verb": "attach"})
    assert (await disk.get(spider, CONN, "disk-a")).owner_vm.name_id == "vm-d"
    status, html = await page(client, BASE + disk_path)
    assert re.search(r'class="owner">vm-d\s*<form', html)       # the row names its VM and offers a detach
    assert "Disk 'disk-a' detached from VM 'vm-d'" in await post_form(
        client, f"{disk_path}/attach", {"DiskName": "disk-a", "VMName": "vm-d", "verb": "detach"})
    assert not (await disk.get(spider, CONN, "disk-a")).owner_vm.name_id
    assert "increased to 80 GB" in await post_form(client, f"{disk_path}/size", {"DiskName": "disk-a", "Size": "80"})
    assert (await disk.get(spider, CONN, "disk-a")).disk_size == "80"
    # bad input is a message, and changes nothing
    assert "must be greater than the current size 80" in await post_form(
        client, f"{disk_path}/size", {"DiskName": "disk-a", "Size": "20"})
    assert "is not a valid Disk Size" in await post_form(client, f"{disk_path}/size", {"DiskName": "disk-a",
                                                                                        "Size": "lots"})
    assert "is not a valid Disk Size" in await post_form(client, disk_path, {"Name": "disk-b", "DiskSize": "-5"})
    assert "is not attached to VM 'vm-d'" in await post_form(
        client, f"{disk_path}/attach", {"DiskName": "disk-a", "VMName": "vm-d", "verb": "detach"})
    assert "does not exist" in await post_form(client, f"{disk_path}/attach", {"DiskName": "disk-a",
                                                                                "VMName": "vm-nope", "verb": "attach"})
    assert [d.iid.name_id for d in await disk.list_all(spider, CONN)] == ["disk-a"]
    assert "Deleted disk: disk-a" in await post_form(client, f"{disk_path}/delete", {"name": "disk-a"})
    assert await disk.list_all(spider, CONN) == []
    # a disk only the CSP has: listed as such on "MetaDB vs CSP", deleted there by its CSP id
    conn = await spider.connection(CONN)
    stray = await common.handler(conn, common.DISK).create_disk(DiskInfo(IID("stray-disk", "")))
    _, html = await page(client, f"{BASE}/mgmt/disk/{CONN}")
    assert f'<td>CSP only</td><td>(stray-disk)</td><td><code>{stray.iid.system_id}</code>' in html
    assert "Deleted CSP Disk" in await post_form(client, f"/mgmt/disk/{CONN}/delete", {"csp": stray.iid.system_id})
    assert (await common.all_list(spider, CONN, common.DISK))["OnlyCSPList"] == []

    assert "MyImage 'img-a' snapshotted from VM 'vm-d'" in await post_form(client, image_path,
                                                                           {"Name": "img-a", "SourceVM": "vm-d"})
    status, html = await page(client, BASE + image_path)
    assert rows(html) == ["img-a"] and "<td>vm-d</td>" in html
    assert "does not exist" in await post_form(client, image_path, {"Name": "img-b", "SourceVM": "vm-nope"})
    assert "Deleted MyImage: img-a" in await post_form(client, f"{image_path}/delete", {"name": "img-a"})
    assert rows((await page(client, BASE + image_path))[1]) == []


async def test_public_ip_page_on_null(spider, null_server):
    client = null_server.client
    await null_vm(spider)
    path = f"/publicip/{CONN}"
    assert "Public IP 'ip-a' allocated" in await post_form(client, path, {"Name": "ip-a"})
    assert "associated with VM 'vm-d'" in await post_form(client, f"{path}/associate",
                                                          {"IPName": "ip-a", "VMName": "vm-d", "verb": "associate"})
    _, html = await page(client, BASE + path)
    assert rows(html) == ["ip-a"] and 'class="owner">vm-d<' in html
    assert "Public IP 'ip-a' disassociated" in await post_form(client, f"{path}/associate",
                                                               {"IPName": "ip-a", "verb": "disassociate"})
    assert not (await publicip.get(spider, CONN, "ip-a")).owned_vm.name_id
    assert "explode is not a valid action!!" in await post_form(client, f"{path}/associate",
                                                                {"IPName": "ip-a", "verb": "explode"})
    assert "Deleted public IP: ip-a" in await post_form(client, f"{path}/delete", {"name": "ip-a"})
    assert await publicip.list_all(spider, CONN) == []


async def test_disk_and_myimage_pages_escape_names_and_refuse_csrf_less_posts(spider, null_server):
    client = null_server.client
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert "created" in await post_form(client, f"/disk/{CONN}", {"Name": HOSTILE})
    await null_vm(spider, HOSTILE)
    await myimage.snapshot(spider, CONN, {"Name": HOSTILE, "SourceVM": HOSTILE}, None)
    for section in ("disk", "myimage", "publicip"):
        status, html = await page(client, f"{BASE}/{section}/{CONN}")
        assert status == 200 and HOSTILE not in html and escaped in html, section
    assert rows((await page(client, f"{BASE}/disk/{CONN}"))[1]) == [escaped]
    assert rows((await page(client, f"{BASE}/myimage/{CONN}"))[1]) == [escaped]
    for path, form in ((f"/disk/{CONN}", {"Name": "disk-x"}), (f"/disk/{CONN}/delete", {"name": HOSTILE}),
                       (f"/myimage/{CONN}", {"Name": "img-x", "SourceVM": HOSTILE}),
                       (f"/publicip/{CONN}", {"Name": "ip-x"})):
        async with client.post(BASE + path, data=form, allow_redirects=False) as resp:
            assert resp.status == 403 and "CSRF token is missing or wrong" in await resp.text(), path
    assert [d.iid.name_id for d in await disk.list_all(spider, CONN)] == [HOSTILE]
    assert [i.iid.name_id for i in await myimage.list_all(spider, CONN)] == [HOSTILE]
    assert await publicip.list_all(spider, CONN) == []


async def test_a_form_from_one_replica_posts_to_another_sharing_the_installation_key(spider, null_server, tmp_path):
    """Replicas behind a load balancer share ``secret.key``: the token one wrote is good at the other
    (here: a second app on the same root), and not at a server with another installation key."""
    from spider_core.adminweb.web import SESSION_COOKIE
    from spider_core.services.context import Settings, Spider

    good = await token(null_server.client)
    sid = next(c.value for c in null_server.client.session.cookie_jar if c.key == SESSION_COOKIE)
    form = {"Name": "vpc-replica", "IPv4_CIDR": "10.0.0.0/16", "SubnetName": "s1", "SubnetCIDR": "10.0.1.0/24",
            "SubnetZone": "", "csrf_token": good}
    other = await Spider.start(Settings(root=tmp_path / "other-installation"))
    try:
        for target, expected in ((spider, 303), (other, 403)):
            replica = TestClient(TestServer(create_app(target)))
            await replica.start_server()
            try:
                async with replica.post(f"{BASE}/vpc/{CONN}", data=form, allow_redirects=False,
                                        headers={"Cookie": f"{SESSION_COOKIE}={sid}"}) as resp:
                    assert resp.status == expected, await resp.text()
            finally:
                await replica.close()
    finally:
        await other.close()
    assert [v.iid.name_id for v in await vpc.list_all(spider, CONN)] == ["vpc-replica"]
