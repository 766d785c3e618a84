"""``spider twin`` / ``python -m cloudtwin``: run Cloud-Twin (placeholder; full options follow)."""

from __future__ import annotations

import argparse
import asyncio

from cloudtwin.app import TwinServer
from cloudtwin.clouds import TwinConfig


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="cloudtwin")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8192)
    p.add_argument("--time-scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    async def run() -> None:
        srv = TwinServer(host=args.host, port=args.port, config=TwinConfig(seed=args.seed,
                                                                          time_scale=args.time_scale))
        await srv.start()
        print(f"Cloud-Twin listening on {srv.url}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())
    return 0
