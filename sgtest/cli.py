"""``spider sgtest``: run the security-group verification suites against any Spider over REST.

Exit codes: 0 every cell matched; 1 mismatches ((X) cells, API read-back or step answers that
disagree with the rule model); 2 the run could not be judged (refused, prober unusable, errors,
cleanup left something behind); 130 interrupted (after cleaning up).
"""

from __future__ import annotations

COMMAND_HELP = "verify security-group rules end to end through any Spider's REST API"
COMMAND_DESCRIPTION = ("verify security-group rules end to end through any Spider's REST API "
                       "(CB-Spider's SG suites, a generated matrix, your own case files)")

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

from spider_core.client import AsyncSpiderClient, SpiderAPIError
from sgtest.cases import Suite
from sgtest.generate import generated_suite
from sgtest.probers import KINDS, ProberError, make_prober
from sgtest.probers.netns import DEFAULT_TIMEOUT_MS, DEFAULT_TWIN
from sgtest.resources import RunRefused
from sgtest.runner import RunConfig, Runner
from sgtest.schema import CaseFileError, builtin_suite, load_suite

DEFAULT_SERVER = "http://127.0.0.1:1024"
SUITES = ("cbspider-inbound", "cbspider-outbound", "cbspider-rules", "generated", "all")
ALL_ORDER = ("cbspider-rules", "cbspider-inbound", "cbspider-outbound", "generated")
MODEL_PROVIDERS = ("MOCK", "NULL")
EXIT_REFUSED = 2
EXIT_INTERRUPTED = 130


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", default=DEFAULT_SERVER, help=f"the Spider's base URL (default {DEFAULT_SERVER})")
    p.add_argument("--connection", required=True, help="the Spider connection config to test")
    p.add_argument("--suite", choices=SUITES, default=None,
                   help="which shipped suite to run (default: all, or only --cases when given)")
    p.add_argument("--cases", action="append", default=[], metavar="FILE",
                   help="your own case file (YAML; schema in sgtest/schema.py, example sgtest/cases/example-user.yaml); "
                        "repeatable")
    p.add_argument("--prober", choices=("auto", *KINDS), default="auto",
                   help="how traffic is observed (default auto: netns for CLOUDTWIN with the twin's data plane "
                        "on, model for MOCK or no data plane, ssh for real clouds)")
    p.add_argument("--out", default="sgtest-out", help="report directory (default ./sgtest-out)")
    p.add_argument("--baseline", default=None, help="a previous run's result.json to compare with")
    p.add_argument("--twin", default=DEFAULT_TWIN, help=f"Cloud-Twin's URL for the netns prober (default {DEFAULT_TWIN})")
    p.add_argument("--twin-cloud", default="", help="the twin cloud of the connection (picks the client namespace)")
    p.add_argument("--twin-region", default="", help="the twin region of the connection")
    p.add_argument("--image", default=None, help="VM image (default: from the connection's /vmimage list)")
    p.add_argument("--spec", default=None, help="VM spec (default: from the connection's /vmspec list)")
    p.add_argument("--client-ip", default="", help="this host's public IP (CLIENT1_IP) for the ssh/model probers")
    p.add_argument("--client-ip-echo", default="", metavar="URL",
                   help="ask this echo service for CLIENT1_IP (e.g. https://ifconfig.co); only when given")
    p.add_argument("--prefix", default="SG-Rules-Test", help="resource name prefix (default CB-Spider's SG-Rules-Test)")
    p.add_argument("--csp", default="", help="CSP word in the CB-Spider result file (default: the provider, lowercase)")
    p.add_argument("--probe-timeout-ms", type=int, default=DEFAULT_TIMEOUT_MS,
                   help=f"netns probe timeout (default {DEFAULT_TIMEOUT_MS}); ssh uses CB-Spider's 3 s unless >= 1000")
    p.add_argument("--settle", type=float, default=0.0,
                   help="seconds to wait after each REST change (CB-Spider: 10, Azure 80; default 0)")
    p.add_argument("--ready-timeout", type=float, default=30.0,
                   help="seconds to wait for the first probes to agree with the model (CB-Spider waits for ssh)")
    p.add_argument("--quiet", action="store_true", help="no per-case progress lines")


def select_suites(args: argparse.Namespace) -> list[Suite]:
    name = args.suite or ("all" if not args.cases else None)
    suites: list[Suite] = []
    for n in (ALL_ORDER if name == "all" else (name,) if name else ()):
        suites.append(generated_suite() if n == "generated" else builtin_suite(n))
    suites += [load_suite(path) for path in args.cases]
    return suites


async def choose_prober_kind(args: argparse.Namespace) -> str:
    if args.prober != "auto":
        return args.prober
    async with AsyncSpiderClient(args.server, timeout=30) as spider:
        try:
            provider = str((await spider.get_connection_config(args.connection)).get("ProviderName", ""))
        except SpiderAPIError as exc:
            raise RunRefused(f"connection '{args.connection}': {exc.message}") from None
    if provider.upper() in MODEL_PROVIDERS:
        return "model"
    if provider.upper() == "CLOUDTWIN":
        from sgtest.probers.netns import NetnsProber

        probe = NetnsProber(args.twin)
        try:
            enabled = bool((await probe.status()).get("enabled"))
        except ProberError:
            enabled = False
        finally:
            await probe.close()
        return "netns" if enabled else "model"
    return "ssh"


async def _client_ip(args: argparse.Namespace) -> str:
    if args.client_ip or not args.client_ip_echo:
        return args.client_ip
    from sgtest.probers.ssh import client_ip_from_echo

    return await client_ip_from_echo(args.client_ip_echo)


async def run_async(args: argparse.Namespace) -> int:
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    signals = {"count": 0}

    def on_signal(signame: str) -> None:
        signals["count"] += 1
        if signals["count"] == 1 and task is not None:
            print(f"sgtest: {signame}: stopping and cleaning up ...", file=sys.stderr, flush=True)
            task.cancel()
        else:
            print("sgtest: still cleaning up, please wait", file=sys.stderr, flush=True)

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal, sig.name)
        except (NotImplementedError, RuntimeError):  # not the main thread / not POSIX
            pass
    try:
        suites = select_suites(args)
        kind = await choose_prober_kind(args)
        timeout = args.probe_timeout_ms
        if kind == "ssh" and timeout < 1000:
            timeout = 3000
        prober = make_prober(kind, twin=args.twin, client_ip=await _client_ip(args), timeout_ms=timeout,
                             twin_cloud=args.twin_cloud, twin_region=args.twin_region)
    except (CaseFileError, RunRefused, ProberError) as exc:
        print(f"sgtest: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = RunConfig(server=args.server, connection=args.connection, suites=suites, out=out, csp=args.csp,
                       image=args.image, spec=args.spec, prefix=args.prefix, settle_s=args.settle,
                       ready_timeout_s=args.ready_timeout,
                       username=os.environ.get("SPIDER_USERNAME") or None,
                       password=os.environ.get("SPIDER_PASSWORD") or None,
                       progress=(lambda line: None) if args.quiet else (lambda line: print(line, flush=True)))
    runner = Runner(config, prober)
    interrupted = False
    refused = ""
    try:
        await runner.run()
    except asyncio.CancelledError:
        interrupted = True
        if task is not None:
            task.uncancel()
    except (RunRefused, ProberError) as exc:
        refused = str(exc)
    except (SpiderAPIError, RuntimeError, OSError) as exc:
        refused = f"the run stopped: {exc}"
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):
                pass
    outcome = runner.outcome
    if refused:
        print(f"sgtest: {refused}", file=sys.stderr)
        if outcome.suites:
            outcome.suites[-1].errors.append(refused)
    for err in outcome.cleanup_errors:
        print(f"sgtest: cleanup: {err}", file=sys.stderr)
    from reports.writer import write_reports

    code = write_reports(outcome.suites, out, baseline=args.baseline) if outcome.suites else 0
    for s in outcome.suites:
        print(f"{s.name}: {len(s.cases)} cases, {s.cell_count()} cells, {s.mismatch_count()} mismatched, "
              f"{s.duration_s:.1f} s ({s.prober})")
    print(f"reports in {out}/ (report.md, CB-Spider .out, junit.xml, result.json)")
    if interrupted:
        return EXIT_INTERRUPTED
    if refused or outcome.cleanup_errors:
        return max(code, EXIT_REFUSED)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spider sgtest", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    return asyncio.run(run_async(args))


if __name__ == "__main__":
    sys.exit(main())
