"""The Tempest harness's counting: one outcome per listed test, a failed class setup failing all of
its tests, a worker's silence counting as a failure, ratios per group."""

from __future__ import annotations

import json
from pathlib import Path

from cloudtwin.tempest import results
from cloudtwin.tempest.conf import TEMPLATE

LISTED = [
    "tempest.api.compute.servers.test_a.ServersTest.test_one[id-1,smoke]",
    "tempest.api.compute.servers.test_a.ServersTest.test_two[id-2]",
    "tempest.api.compute.admin.test_b.AdminTest.test_x[id-3]",
    "tempest.api.compute.admin.test_b.AdminTest.test_y[id-4]",
    "tempest.api.network.test_n.NetTest.test_net[id-5]",
    "tempest.api.image.v2.test_i.ImgTest.test_img[id-6]",
    "tempest.api.volume.test_v.VolTest.test_vol[id-7]",
    "tempest.api.volume.test_w.SkippedClass.test_w[id-8]",
]


def _lines(*records: tuple[str, str, str]) -> list[str]:
    return [json.dumps({"id": i, "status": s, "reason": r}) for i, s, r in records]


def test_a_failed_class_setup_fails_each_of_its_tests_and_silence_is_a_failure() -> None:
    res = results.parse_results(_lines(
        ("tempest.api.compute.servers.test_a.ServersTest.test_one[id-1,smoke]", "success", ""),
        ("tempest.api.compute.servers.test_a.ServersTest.test_two[id-2]", "skip", "not configured"),
        ("setUpClass (tempest.api.compute.admin.test_b.AdminTest)", "fail", "Details: 405"),
        ("tempest.api.network.test_n.NetTest.test_net[id-5]", "fail", "AssertionError"),
        ("setUpClass (tempest.api.volume.test_w.SkippedClass)", "skip", "backup is off"),
        ("tempest.api.image.v2.test_i.ImgTest.test_img[id-6]", "success", ""),
    ) + ["not json: worker chatter"])
    tally = results.tally(LISTED, res)
    assert len(tally.outcomes) == len(LISTED)
    status = {o.test: o.status for o in tally.outcomes}
    assert status["tempest.api.compute.admin.test_b.AdminTest.test_x"] == "failed"
    assert status["tempest.api.compute.admin.test_b.AdminTest.test_y"] == "failed"
    assert status["tempest.api.volume.test_v.VolTest.test_vol"] == "failed"       # never reported
    assert status["tempest.api.volume.test_w.SkippedClass.test_w"] == "skipped"   # skipped setup
    compute = tally.counts("compute")
    assert (compute["passed"], compute["failed"], compute["skipped"]) == (1, 2, 1)
    assert tally.ratio(compute) == 1 / 3
    assert tally.ratio(tally.counts("image")) == 1.0
    assert tally.groups() == ["compute", "network", "image", "volume"]
    total = tally.counts()
    assert (total["passed"], total["failed"], total["skipped"]) == (2, 4, 2)
    assert "Details: 405" in next(o.reason for o in tally.outcomes if o.test.endswith("test_x"))
    report = tally.report().splitlines()
    assert report[0].split() == ["group", "passed", "failed", "skipped", "ratio"]
    assert report[-1].split() == ["total", "2", "4", "2", "0.33"]


def test_a_retried_test_keeps_its_last_outcome() -> None:
    res = results.parse_results(_lines(("tempest.api.network.test_n.NetTest.test_net", "fail", "x"),
                                       ("tempest.api.network.test_n.NetTest.test_net[id-5]", "success", "")))
    tally = results.tally(["tempest.api.network.test_n.NetTest.test_net[id-5]"], res)
    assert [o.status for o in tally.outcomes] == ["passed"]


def test_every_switched_off_flag_of_the_configuration_is_explained_in_the_doc() -> None:
    rows = [line for line in (Path(__file__).resolve().parents[1] / "docs" / "tempest.md").read_text().splitlines()
            if line.startswith("| `[")]
    off, section = [], ""
    for line in TEMPLATE.read_text().splitlines():
        if line.startswith("["):
            section = line.strip()
        elif line.replace(" ", "").endswith("=False") and section != "[DEFAULT]":
            off.append((section, line.split("=")[0].strip()))
    assert off, "the template switches nothing off?"
    missing = [f"{s} {flag}" for s, flag in off
               if not any(f"`{s} *`" in row or (f"`{s} " in row and f"{flag}`" in row) for row in rows)]
    assert not missing, f"flags off without a reason in docs/tempest.md: {missing}"
