"""Run OpenStack's own API tests (Tempest) against a fresh twin and count the outcome per group.

``python -m cloudtwin.tempest`` starts ``python -m cloudtwin`` on a free loopback port, makes a Tempest
workspace in a temporary directory (``HOME`` points there too: Tempest keeps a registry under
``~/.tempest``), writes its ``tempest.conf`` from the twin (``conf``), runs ``tempest run`` from the
Tempest venv, and counts the results (``results``). Everything it started or wrote is removed at the
end (``--keep`` leaves the workspace, with Tempest's log and the twin's, for a look).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from cloudtwin.tempest import conf, results

DEFAULT_REGEX = r"^tempest\.api\.(compute|network|image|volume|identity)\."
DEFAULT_VENV = os.environ.get("TEMPEST_VENV", "/work/tempest-venv")
DUMP = Path(__file__).with_name("subunit_dump.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Twin:
    """``python -m cloudtwin`` on 127.0.0.1:<free port>, its output in ``log``; stopped on exit."""

    def __init__(self, log: Path, args: list[str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> "Twin":
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "cloudtwin", "--port", str(self.port), *self.args],
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cloudtwin exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/_twin/health", timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise RuntimeError("cloudtwin did not start within 30 s")

    def __exit__(self, *exc: object) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Tempest:
    """The Tempest venv's commands, run in one workspace with ``HOME`` inside it."""

    def __init__(self, venv: Path, workspace: Path) -> None:
        self.bin = venv / "bin"
        if not (self.bin / "tempest").exists():
            raise SystemExit(f"no Tempest at {self.bin}/tempest: build a venv with 'pip install tempest' "
                             "and pass --tempest-venv")
        self.workspace = workspace
        self.env = dict(os.environ, HOME=str(workspace / "home"), PATH=f"{self.bin}:{os.environ.get('PATH', '')}")
        for key in [k for k in self.env if k.startswith("OS_")]:   # no stray cloud credentials
            del self.env[key]

    def run(self, *args: str, timeout: float | None = None, capture: bool = True,
            stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([str(self.bin / args[0]), *args[1:]], cwd=self.workspace / "run", env=self.env,
                              input=stdin, capture_output=capture, timeout=timeout, check=False)

    def init(self) -> None:
        (self.workspace / "home").mkdir(parents=True, exist_ok=True)
        done = subprocess.run([str(self.bin / "tempest"), "init", str(self.workspace / "run")], env=self.env,
                              capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"tempest init failed: {done.stderr.decode()[-2000:]}")

    def list_tests(self, regex: str, exclude: str | None) -> list[str]:
        args = ["tempest", "run", "--list-tests", "--regex", regex]
        if exclude:
            args += ["--exclude-regex", exclude]
        done = self.run(*args, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"tempest run --list-tests failed: {done.stderr.decode()[-2000:]}")
        return [ln for ln in done.stdout.decode().splitlines() if ln.startswith("tempest.")]

    def results(self) -> dict[str, tuple[str, str]]:
        stream = self.run("stestr", "last", "--subunit", timeout=300)
        dumped = self.run("python", str(DUMP), stdin=stream.stdout, timeout=300)
        if dumped.returncode != 0:
            raise RuntimeError(f"reading the results failed: {dumped.stderr.decode()[-2000:]}")
        return results.parse_results(dumped.stdout.decode().splitlines())


def run(args: argparse.Namespace) -> results.Tally:
    workspace = Path(tempfile.mkdtemp(prefix="cloudtwin-tempest-"))
    try:
        tempest = Tempest(Path(args.tempest_venv), workspace)
        tempest.init()
        twin_args = ["--default-profile", args.profile, "--time-scale", str(args.time_scale), *args.twin_arg]
        with Twin(workspace / "twin.log", twin_args) as twin:
            path = conf.write(twin.url, workspace / "run", conf.Admin(region=args.region))
            print(f"tempest: twin {twin.url}, workspace {workspace}, config {path}", flush=True)
            listed = tempest.list_tests(args.regex, args.exclude_regex)
            print(f"tempest: {len(listed)} tests match {args.regex!r}; running with concurrency "
                  f"{args.concurrency}", flush=True)
            cmd = ["tempest", "run", "--regex", args.regex, "--concurrency", str(args.concurrency)]
            if args.exclude_regex:
                cmd += ["--exclude-regex", args.exclude_regex]
            started = time.monotonic()
            tempest.run(*cmd, timeout=args.timeout, capture=not args.verbose)
            elapsed = time.monotonic() - started
        tally = results.tally(listed, tempest.results())
        print(f"tempest: ran in {elapsed:.0f} s", flush=True)
        return tally
    finally:
        if args.keep:
            print(f"tempest: workspace kept at {workspace}", flush=True)
        else:
            shutil.rmtree(workspace, ignore_errors=True)


def print_tally(tally: results.Tally, failures: int) -> None:
    print(tally.report())
    if failures:
        print(f"\nclasses with the most failed tests (top {failures}):")
        for cls, n in tally.by_class()[:failures]:
            first = next(o.reason for o in tally.outcomes if o.status == results.FAILED
                         and results.class_of(o.test) == cls)
            print(f"  {n:4d}  {cls}\n        {first.splitlines()[-1][:200] if first else ''}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cloudtwin.tempest", description=__doc__.split("\n\n")[0])
    p.add_argument("--regex", default=DEFAULT_REGEX, help=f"tests to run (default {DEFAULT_REGEX})")
    p.add_argument("--exclude-regex", default=None, help="tests to leave out (say why in docs/tempest.md)")
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--tempest-venv", default=DEFAULT_VENV, help=f"venv with tempest (default {DEFAULT_VENV}; "
                                                                "$TEMPEST_VENV)")
    p.add_argument("--profile", default="openstack", help="the twin's default profile (cloudtwin/profiles)")
    p.add_argument("--region", default="RegionOne")
    p.add_argument("--time-scale", type=float, default=0.1, help="the twin's lifecycle time scale")
    p.add_argument("--twin-arg", action="append", default=[], help="extra argument for python -m cloudtwin")
    p.add_argument("--timeout", type=float, default=4 * 3600, help="seconds before tempest run is stopped")
    p.add_argument("--json", default=None, metavar="FILE", help="write every test's outcome and reason here")
    p.add_argument("--failures", type=int, default=20, help="list the N classes with the most failures")
    p.add_argument("--keep", action="store_true", help="keep the workspace (tempest.log, twin.log)")
    p.add_argument("-v", "--verbose", action="store_true", help="show tempest run's own output")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    tally = run(args)
    print_tally(tally, args.failures)
    if args.json:
        Path(args.json).write_text(json.dumps(tally.to_json(), indent=1))
    return 0
