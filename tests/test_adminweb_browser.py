"""AdminWeb in a real browser: Debian's Chromium, headless, driven by selenium through Debian's
chromedriver (no browser download: the driver path is given, so Selenium Manager never runs).

Spider runs as ``spider serve`` with Basic auth on; the browser sends the credentials on every request
(Chrome DevTools' extra headers), so each form also passes the CSRF check like a user's would. The
tests register a MOCK connection through the forms, create a VPC, SG, key pair and VM, control and
terminate the VM, find the calls in the call history, run the multi-cloud Create Resources form, add a
Cloud-Twin fault and see its events, show hostile names as text, and open a load report (figures, chart,
Locust's own report) and an sgtest report (its coloured matrix). Screenshots go to ``test-artifacts/adminweb/`` (``ADMINWEB_SCREENSHOTS``
overrides); the path is printed at the end.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from spider_helpers import REPO, SpiderProcess, TwinSubprocess

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
USER, PASSWORD = "admin", "browser-test-password"
CONN = "mock-ui-config"
SHOTS = Path(os.environ.get("ADMINWEB_SCREENSHOTS") or REPO / "test-artifacts" / "adminweb")
WAIT = 30


def _require_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[test]')")
    if missing:
        reason = f"AdminWeb browser tests need {', '.join(missing)} (apt install chromium chromium-driver)"
        if os.environ.get("SPIDERTWIN_REQUIRE_ROOT_TESTS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def report_dirs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("adminweb-reports")


@pytest.fixture(scope="module")
def server(tmp_path_factory, report_dirs):
    env = {"SPIDER_USERNAME": USER, "SPIDER_PASSWORD": PASSWORD, "SPIDER_REPORT_DIRS": str(report_dirs)}
    with SpiderProcess(tmp_path_factory.mktemp("adminweb-browser"), env=env) as proc:
        yield proc


@pytest.fixture(scope="module")
def browser(server, request):
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1500,1100", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}})
        driver.set_page_load_timeout(120)
        SHOTS.mkdir(parents=True, exist_ok=True)
        yield Page(driver, server.base)
    finally:
        driver.quit()
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print(f"\nAdminWeb screenshots: {SHOTS}")


class Page:
    """A few verbs over selenium for AdminWeb's forms and tables."""

    def __init__(self, driver, base: str) -> None:
        self.driver = driver
        self.base = base + "/spider/adminweb"

    def open(self, path: str = "") -> None:
        self.driver.get(self.base + path)

    def shot(self, name: str) -> Path:
        path = SHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def find(self, css: str):
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str):
        from selenium.webdriver.common.by import By
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def fill(self, form: str, name: str, value: str, index: int = 0) -> None:
        box = self.all(f"#{form} [name='{name}']")[index]
        box.clear()
        box.send_keys(value)

    def choose(self, form: str, name: str, value: str) -> None:
        from selenium.webdriver.support.ui import Select
        select = Select(self.find(f"#{form} select[name='{name}']"))
        if any(o.get_dom_attribute("value") == value for o in select.options):
            select.select_by_value(value)
        else:
            select.select_by_visible_text(value)

    def click(self, css: str) -> None:
        """Click something that posts a form; ``flash`` then waits for the page it leads to."""
        self.before = self.find("html")
        self.find(css).click()

    def submit(self, form: str) -> None:
        self.click(f"#{form} button[type=submit]")

    def flash(self, *, timeout: float = WAIT) -> str:
        """The message of the page the last form led to (waits for the new page)."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait

        def left(_driver: object) -> bool:
            """The old page is gone. Selenium's staleness_of expects a StaleElementReferenceException,
            but Chromium may answer mid-navigation with an inspector error ("Node with given id does
            not belong to the document"): that node is gone just the same."""
            try:
                self.before.is_enabled()
            except WebDriverException:
                return True
            return False

        WebDriverWait(self.driver, timeout).until(left)
        WebDriverWait(self.driver, timeout, ignored_exceptions=(WebDriverException,)).until(
            lambda d: self.all("#flash"))
        return self.find("#flash").text

    def accept_confirm(self) -> None:
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait
        WebDriverWait(self.driver, 10).until(ec.alert_is_present())
        self.driver.switch_to.alert.accept()

    def cells(self, table: str) -> list[list[str]]:
        """A table's cell texts, read in one go (live tables are swapped under selenium's feet)."""
        return self.driver.execute_script(
            "return [...document.querySelectorAll(arguments[0] + ' tbody tr')]"
            ".map(r => [...r.cells].map(c => c.innerText.trim()))", table)

    def names(self) -> list[str]:
        return [td.text for td in self.all("#items td.name")]

    def wait_for(self, predicate, timeout: float = WAIT):
        from selenium.webdriver.support.ui import WebDriverWait
        return WebDriverWait(self.driver, timeout, poll_frequency=0.25).until(lambda d: predicate())


@pytest.fixture(scope="module")
def mock_connection(browser):
    """Driver, credential, region and connection config for MOCK, each through its form."""
    page = browser
    page.open("/driver")
    page.fill("create-form", "DriverName", "mock-driver-ui")
    page.choose("create-form", "ProviderName", "MOCK")
    page.submit("create-form")
    assert "Driver 'mock-driver-ui' (MOCK) registered" in page.flash()
    page.shot("01-driver")

    page.open("/credential")
    page.choose("create-form", "ProviderName", "MOCK")
    assert page.all("#create-form input[name=key]")[0].get_attribute("value") == "MockName"  # filled by the page
    page.fill("create-form", "CredentialName", "mock-credential-ui")
    page.fill("create-form", "value", f"ui-{uuid.uuid4().hex[:10]}")
    page.submit("create-form")
    assert "Credential 'mock-credential-ui' (MOCK) registered" in page.flash()
    page.shot("02-credential")

    page.open("/region")
    page.choose("create-form", "ProviderName", "MOCK")
    assert page.all("#create-form input[name=key]")[0].get_attribute("value") == "Region"
    page.fill("create-form", "RegionName", "mock-region-ui")
    page.fill("create-form", "value", "default")
    page.submit("create-form")
    assert "Region 'mock-region-ui' (MOCK) registered" in page.flash()
    page.shot("03-region")

    page.open("/connectionconfig")
    page.fill("create-form", "ConfigName", CONN)
    page.choose("create-form", "ProviderName", "MOCK")
    page.choose("create-form", "DriverName", "mock-driver-ui")
    page.choose("create-form", "CredentialName", "mock-credential-ui")
    page.choose("create-form", "RegionName", "mock-region-ui")
    page.submit("create-form")
    assert f"Connection config '{CONN}' registered" in page.flash()
    page.shot("04-connectionconfig")
    return CONN


def test_register_a_mock_connection_through_the_ui(browser, mock_connection):
    browser.open("")
    rows = [r.text for r in browser.all("#connections tbody tr")]
    assert any(r.startswith(f"{CONN} MOCK mock-driver-ui mock-credential-ui mock-region-ui") for r in rows), rows
    browser.shot("05-main")


def test_create_resources_control_and_terminate_a_vm_then_find_the_calls(browser, mock_connection):
    page = browser
    page.open(f"/vpc/{CONN}")
    page.fill("create-form", "Name", "vpc-ui")
    page.submit("create-form")
    assert "VPC 'vpc-ui' created" in page.flash()
    assert page.names() == ["vpc-ui"]
    assert "subnet-01 · 10.0.1.0/24" in page.find("#items tbody tr").text
    page.shot("10-vpc")

    page.open(f"/securitygroup/{CONN}")
    page.fill("create-form", "Name", "sg-ui")
    page.choose("create-form", "VPCName", "vpc-ui")
    page.submit("create-form")
    assert "Security group 'sg-ui' created with" in page.flash()
    assert page.names() == ["sg-ui"]
    assert "inbound TCP 22-22 0.0.0.0/0" in page.find("#items tbody tr").text
    page.shot("11-securitygroup")

    page.open(f"/keypair/{CONN}")
    page.fill("create-form", "Name", "key-ui")
    page.submit("create-form")
    assert "Key pair 'key-ui' created" in page.flash()
    assert "PRIVATE KEY" in page.find("#private-key textarea").get_attribute("value")
    assert page.names() == ["key-ui"]
    page.shot("12-keypair")

    page.open(f"/vm/{CONN}")
    page.fill("create-form", "Name", "vm-ui")
    page.choose("create-form", "KeyPairName", "key-ui")
    page.submit("create-form")
    assert "VM 'vm-ui' started" in page.flash(timeout=90)
    assert page.names() == ["vm-ui"]
    row = page.find("#items tbody tr")
    assert "Running" in row.find_element("css selector", "td.status").text
    assert "vpc-ui" in row.text and "sg-ui" in row.text and "key-ui" in row.text
    page.shot("13-vm-running")

    for verb, answer in (("suspend", "vm-ui: Suspending"), ("resume", "vm-ui: Resuming")):
        page.click(f"#items button[value={verb}]")
        assert answer in page.flash(timeout=60)
    page.click("#items button[value=terminate]")
    page.accept_confirm()
    assert "Terminate: vm-ui: Terminat" in page.flash(timeout=90)
    assert page.names() == []
    page.shot("14-vm-terminated")

    page.open(f"/calllog?connection={CONN}&limit=1000")
    calls = page.cells("#calls")
    # columns: seq, time, cloud OS, region/zone, connection, resource type, resource name, API, elapsed, error
    assert {c[5] for c in calls} >= {"VPC/SUBNET", "SECURITYGROUP", "VMKEYPAIR", "VM"}, calls[:20]
    assert all(c[2] == "MOCK" and c[4] == CONN for c in calls)
    assert ["VM", "vm-ui", "CB-Spider:TerminateVM()"] in [c[5:8] for c in calls]
    assert any(c[5] == "VPC/SUBNET" and c[6].startswith("vpc-ui-") for c in calls)   # the VPC's spUUID
    page.shot("15-calllog")
    # the filters narrow the view
    page.open(f"/calllog?connection={CONN}&resourcename=vm-ui&limit=1000")
    assert {c[6] for c in page.cells("#calls")} == {"vm-ui"}


def test_create_resources_on_two_clouds_from_one_form(browser, server, mock_connection):
    """CB-Spider's multi-cloud demo: VPC + SG + key + VM on MOCK and NULL from one form."""
    auth = (USER, PASSWORD)
    for path, body in (("driver", {"DriverName": "null-driver-ui", "ProviderName": "NULL", "DriverLibFileName": "x"}),
                       ("credential", {"CredentialName": "null-cred-ui", "ProviderName": "NULL",
                                       "KeyValueInfoList": []}),
                       ("region", {"RegionName": "null-region-ui", "ProviderName": "NULL",
                                   "KeyValueInfoList": [{"Key": "Region", "Value": "r1"}]}),
                       ("connectionconfig", {"ConfigName": "null-ui-config", "ProviderName": "NULL",
                                             "DriverName": "null-driver-ui", "CredentialName": "null-cred-ui",
                                             "RegionName": "null-region-ui"})):
        assert requests.post(f"{server.url}/{path}", json=body, auth=auth, timeout=30).status_code == 200
    page = browser
    page.open("/createresources")
    page.fill("create-form", "prefix", "mc")
    for conn in (CONN, "null-ui-config"):
        page.find(f"#create-form input[name=conn][value='{conn}']").click()
    page.submit("create-form")
    assert "Resources created on 2 of 2 connection(s)" in page.flash(timeout=120)
    steps = page.cells("#runs")
    assert sorted((c[0], c[1]) for c in steps) == sorted((conn, step) for conn in (CONN, "null-ui-config")
                                                         for step in ("VPC", "Security group", "Key pair", "VM"))
    page.shot("16-create-resources")
    page.open("/vm/null-ui-config")
    assert page.names() == ["mc-vm"]


def test_cloud_twin_fault_from_its_page_and_its_events(browser):
    page = browser
    with TwinSubprocess() as twin:
        page.open("/twin")
        page.fill("twin-chooser", "twin", twin.url)          # a twin entered by hand
        page.find("#twin-chooser button").click()
        page.wait_for(lambda: page.all("#fault-form"))
        page.choose("fault-form", "kind", "error")
        page.fill("fault-form", "match_cloud", "cloud-1")
        page.fill("fault-form", "count", "2")
        page.fill("fault-form", "extra", "preset: quota")
        page.submit("fault-form")
        message = page.flash()
        assert "(error) added" in message, message
        rule = message.split()[1]
        faults = page.all(f"#faults tr[data-fault='{rule}']")
        assert faults and "cloud=cloud-1" in faults[0].text and "error" in faults[0].text
        assert twin.admin("GET", f"/faults/{rule}")["fault"]["match"] == {"cloud": "cloud-1"}
        page.wait_for(lambda: any(c[2] == "fault.added" and c[5] == rule for c in page.cells("#events")))
        page.shot("20-twin-fault")

        page.click(f"#faults tr[data-fault='{rule}'] button")
        assert f"Fault {rule} removed" in page.flash()
        assert not page.all(f"#faults tr[data-fault='{rule}']")
        # the live events table picks the removal up by itself
        page.wait_for(lambda: any(c[2] == "fault.removed" and c[5] == rule for c in page.cells("#events")))
        page.shot("21-twin-fault-removed")


def test_a_hostile_name_is_shown_as_text_and_no_script_runs(browser, mock_connection):
    page = browser
    hostile = ["<script>window.__xss=1;alert(1)</script>", "<img src=x onerror=\"window.__xss=2;alert(2)\">"]
    for i, name in enumerate(hostile):
        page.open(f"/vpc/{CONN}")
        page.fill("create-form", "Name", name)
        page.fill("create-form", "SubnetName", f"subnet-x{i}")
        page.fill("create-form", "IPv4_CIDR", f"10.{10 + i}.0.0/16")
        page.fill("create-form", "SubnetCIDR", f"10.{10 + i}.1.0/24")
        page.submit("create-form")
        assert f"VPC '{name}' created" in page.flash()      # the message shows the name as typed
    page.open(f"/vpc/{CONN}?q=x")
    assert sorted(page.names()) == sorted(hostile)
    from selenium.common.exceptions import NoAlertPresentException
    with pytest.raises(NoAlertPresentException):
        page.driver.switch_to.alert.text
    assert page.driver.execute_script("return window.__xss === undefined")
    page.shot("30-hostile-names")
    # and the same on the other pages that list the names
    page.open(f"/mgmt/vpc/{CONN}")
    shown = [c[3] for c in page.cells("#items")]
    assert all(name in shown for name in hostile), shown
    for path in (f"/securitygroup/{CONN}", f"/vm/{CONN}", f"/calllog?connection={CONN}"):
        page.open(path)
        assert page.driver.execute_script("return window.__xss === undefined"), path


LOCUSTFILE = """
from locust import HttpUser, constant, task


class Prober(HttpUser):
    wait_time = constant(0.1)

    @task
    def health(self):
        self.client.get("/spider/healthz")
"""


def test_a_load_report_with_its_chart_and_locusts_own_report(browser, server, report_dirs, tmp_path):
    """A report directory as ``spider load`` leaves it: figures, a chart, and Locust's HTML report (which
    renders inside its sandbox)."""
    from reports.model import LatencyChart, MetricsTable, SuiteResult
    from reports.writer import write_reports

    out = report_dirs / "load-report"
    suite = SuiteResult("load-health", target=server.url)
    suite.tables.append(MetricsTable("Requests", ["Name", "Requests", "p95 (ms)"], [["GET /spider/healthz", 20, 4.0]]))
    suite.charts.append(LatencyChart("Latency percentiles", {"p50": [(0.0, 2.0), (1.0, 3.0)],
                                                             "p95": [(0.0, 4.0), (1.0, 5.0)]}, slug="latency"))
    write_reports(suite, out)
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    run = subprocess.run([sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-u", "2", "-r", "2",
                          "-t", "2s", "--host", server.base, "--html", str(out / "locust.html"), "--only-summary"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert (out / "locust.html").is_file(), run.stderr[-2000:]

    page = browser
    page.open("/reports")
    page.find("#reports a").click()
    page.wait_for(lambda: page.all("table.figures"))
    assert page.cells("table.figures") == [["GET /spider/healthz", "20", "4.0"]]
    chart = page.find(".charts img")
    assert chart.get_attribute("src").endswith("/file/latency.svg")
    assert page.driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", chart)
    page.shot("40-load-report")
    page.driver.get(page.find("a[href$='/file/locust.html']").get_attribute("href"))
    text = lambda: page.driver.execute_script("return document.body.innerText")  # noqa: E731
    page.wait_for(lambda: "Request Statistics" in text())
    assert "Locust Test Report" in text() and "Prober" in text()
    page.shot("41-locust-report")


def test_an_sgtest_report_colours_its_matrix(browser, report_dirs):
    from datetime import datetime, timezone

    from reports.model import SgCase, SgCell, SgSuite
    from reports.writer import write_reports

    when = datetime.now(timezone.utc)
    cells = [SgCell("I:TCP-01 (22)", "pass", "pass", "pass"), SgCell("I:TCP-02 (1000)", "fail", "fail", "pass")]
    suite = SgSuite("cbspider-inbound", "mock", CONN, when,
                    [SgCase("01", "01.inbound-case-01.sh", "mock", when, cells, description="AddRules inbound TCP 22")],
                    prober="model")
    write_reports(suite, report_dirs / "sgtest-out")
    page = browser
    page.open("/reports")
    page.find("#reports tr.status-fail a").click()
    page.wait_for(lambda: page.all("table.matrix"))
    colours = page.driver.execute_script(
        "return [...document.querySelectorAll('table.matrix td.cell')].map(c => getComputedStyle(c).backgroundColor)")
    green, red = "rgb(215, 245, 221)", "rgb(251, 213, 213)"
    assert colours == [green, red, green]   # two probe cells, then the API read-back
    page.shot("42-sgtest-report")
