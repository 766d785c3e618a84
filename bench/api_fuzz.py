"""A larger schemathesis pass than CI's: every operation of Spider's own OpenAPI description (NULL and
MOCK connections) and of Cloud-Twin's ``/_twin``, N cases each, with the per-route table.

    python bench/api_fuzz.py                     # 40 cases per operation, NULL + MOCK + /_twin
    python bench/api_fuzz.py -n 100 --only null  # more cases, NULL only
    python bench/api_fuzz.py --seed 7            # another draw

Each target runs in its own fresh subprocess (free loopback port, temporary SPIDER_ROOT, stopped on
every exit path). Prints, per operation: cases, 5xx answers, crashes (a 5xx that is not the server's
documented ``{"message"}`` error, or is its catch-all "Internal Server Error"; for /_twin any 5xx),
response-schema/status/content-type mismatches, and the status counts; then the distinct 5xx texts and
the first problems. Exit 1 when there is a crash or a mismatch.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from openapi_fuzz import any_5xx, fuzz, problems, server_errors, table  # noqa: E402
from spider_helpers import SpiderProcess, TwinSubprocess  # noqa: E402
from test_openapi import AUTH, SPIDER_EXCLUDE, TWIN_EXCLUDE, register  # noqa: E402


def run_spider(examples: int, seed: int, which: list[str]) -> list:
    found_all = []
    with tempfile.TemporaryDirectory(prefix="api-fuzz-") as root, \
            SpiderProcess(Path(root), env={"SPIDER_USERNAME": AUTH[0], "SPIDER_PASSWORD": AUTH[1]}) as spider:
        register(spider.base, "NULL", [{"Key": "Name", "Value": f"null-{uuid.uuid4().hex[:8]}"}],
                 [{"Key": "Region", "Value": "null-region"}], "null-config01")
        register(spider.base, "MOCK", [{"Key": "MockName", "Value": f"mock-{uuid.uuid4().hex[:8]}"}],
                 [{"Key": "Region", "Value": "default"}], "mock-config01")
        for conn in [c for c in ("null-config01", "mock-config01") if c.split("-")[0] in which]:
            started = time.monotonic()
            found = fuzz(spider.base + "/spider/api/openapi.json", spider.base, max_examples=examples, auth=AUTH,
                         exclude=SPIDER_EXCLUDE, connection=conn, seed=seed)
            print(f"\n== Spider, connection {conn}: {time.monotonic() - started:.0f} s\n{table(found)}\n"
                  f"{server_errors(found)}", flush=True)
            found_all += found
    return found_all


def run_twin(examples: int, seed: int) -> list:
    with TwinSubprocess() as twin:
        started = time.monotonic()
        found = fuzz(twin.url + "/_twin/openapi.json", twin.url, max_examples=examples, exclude=TWIN_EXCLUDE,
                     crashed=any_5xx, seed=seed)
        print(f"\n== Cloud-Twin /_twin: {time.monotonic() - started:.0f} s\n{table(found)}", flush=True)
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--examples", type=int, default=40, help="cases per operation (default 40)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", choices=("null", "mock", "twin"), action="append",
                    help="targets (default: all three; repeatable)")
    args = ap.parse_args()
    which = args.only or ["null", "mock", "twin"]
    found = []
    if "null" in which or "mock" in which:
        found += run_spider(args.examples, args.seed, which)
    if "twin" in which:
        found += run_twin(args.examples, args.seed)
    print(f"\nall targets: {sum(t.cases for t in found)} cases, {sum(t.server_errors for t in found)} 5xx, "
          f"{sum(len(t.crashes) for t in found)} crashes, {sum(len(t.mismatches) for t in found)} mismatches")
    for line in problems(found):
        print("  " + line)
    return 1 if problems(found) else 0


if __name__ == "__main__":
    sys.exit(main())
