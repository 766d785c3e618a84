"""``python -m examples.monitoring``: the 100-VM monitoring case against Cloud-Twin, through Spider.

Run as root (the twin's data plane makes namespaces, nftables tables, cgroups and host links). Without
``--twin``/``--spider`` it starts both on loopback and stops them at the end; with them it attaches (the
twin must run ``--dataplane netns``). Exit code: 0 when every check passed, 1 when one failed, 2 when
the run could not be made, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from examples.monitoring.scenario import Options, run, summary, table
from examples.monitoring.stack import StackError, open_stack


def parse(argv: list[str] | None = None) -> tuple[argparse.Namespace, Options]:
    p = argparse.ArgumentParser(prog="python -m examples.monitoring", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", "--vms", type=int, default=100, help="VMs to create (default 100)")
    p.add_argument("--crash", type=int, default=10, help="VMs a crash fault takes down (default 10; 0: none)")
    p.add_argument("--outage", type=float, default=5.0, help="seconds of control-plane outage (default 5; 0: none)")
    p.add_argument("--observe", type=float, default=5.0, help="seconds of steady reporting first (default 5)")
    p.add_argument("--silent-after", type=float, default=3.0,
                   help="seconds without a report after which a host counts as silent (default 3)")
    p.add_argument("--meter-every", type=float, default=5.0,
                   help="seconds between two readings of a VM's cgroup CPU and memory from the twin (default 5)")
    p.add_argument("--twin", default=None, help="attach to this Cloud-Twin (default: start one)")
    p.add_argument("--spider", default=None, help="attach to this Spider (default: start one)")
    p.add_argument("--cloud", default="monitoring", help="the twin cloud (Keystone domain) to use")
    p.add_argument("--prefix", default="mon", help="prefix of every resource name")
    p.add_argument("--time-scale", type=float, default=1.0, help="lifecycle delays of a twin started here")
    p.add_argument("--parallel", type=int, default=100, help="VM creates in flight at once")
    p.add_argument("--keep", action="store_true", help="leave the VMs and agents running (attached mode)")
    p.add_argument("--json", type=Path, default=None, help="write the result (checks, per-host rows) here")
    p.add_argument("--workdir", type=Path, default=None, help="keep logs and the key here (default: a temp dir)")
    p.add_argument("--no-table", action="store_true", help="do not print the per-host table")
    args = p.parse_args(argv)
    if args.vms < 1 or not 0 <= args.crash <= args.vms:
        p.error("need -n >= 1 and 0 <= --crash <= -n")
    if args.keep and not (args.twin and args.spider):
        p.error("--keep needs --twin and --spider (servers started here stop at the end)")
    opts = Options(n=args.vms, crash=args.crash, outage=args.outage, observe=args.observe,
                   silent_after=args.silent_after, meter_every=args.meter_every, cloud=args.cloud, prefix=args.prefix, parallel=args.parallel,
                   keep=args.keep)
    return args, opts


def main(argv: list[str] | None = None) -> int:
    args, opts = parse(argv)
    say = lambda line: print(line, flush=True)  # noqa: E731
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    try:
        stack = open_stack(args.twin, args.spider, time_scale=args.time_scale, workdir=args.workdir)
    except StackError as exc:
        say(f"monitoring: cannot start: {exc}")
        return 2
    try:
        say(f"stack: Cloud-Twin {stack.twin_url} ({'started' if stack.twin_proc else 'attached'}), "
            f"Spider {stack.spider_url} ({'started' if stack.spider_proc else 'attached'})")
        result = asyncio.run(run(stack, opts, say))
    except KeyboardInterrupt:
        say("monitoring: interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - one clear line instead of a traceback for a failed run
        say(f"monitoring: the run could not be made: {type(exc).__name__}: {exc}")
        return 2
    finally:
        stack.close()
    if not args.no_table and result.rows:
        say("")
        say(table(result.rows))
        say("")
    if args.json is not None:
        args.json.write_text(json.dumps(result.to_json(), indent=1))
    say(summary(result, opts))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
