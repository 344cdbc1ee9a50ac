#!/usr/bin/env python3
"""Instructions per 1-alert request of webhookfast's own Python, counted by valgrind's callgrind:
a figure that stays the same from run to run, however busy the machine (time per request moves
±25 % here between runs), for telling whether a change to the request path made it cheaper.

    python scripts/instructions.py                # default stack (request id, access log, recovery)
    python scripts/instructions.py --full         # plus bearer auth and the rate limit
    python scripts/instructions.py --loop uvloop  # on the loop Granian runs the server on

The default loop is asyncio's, whose loop methods (create_future, call_soon) are Python: the
figures of earlier passes were counted on it. uvloop's are C, as in the server.

The requests run as in benches/test_handler.py (``App.__rsgi__`` with a fake protocol, the
in-memory store, no socket, no database): 64 concurrent tasks, 50 requests each per round. The
script runs itself twice under callgrind, with 1 and with 4 rounds after a warm-up, and divides
the difference by the requests of the 3 extra rounds, so that start-up is left out. Needs
valgrind (Debian: apt-get install -y valgrind); takes about a minute and a half.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TASKS = 64
PER_TASK = 50


def _requests(rounds: int, full: bool, loop_name: str) -> None:
    sys.path.insert(0, str(ROOT / "benches"))
    from conftest import body
    from fakes import AppHarness, MemoryStore, make_app, webhook_request

    if loop_name == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    h = AppHarness(make_app(full_stack=full, store=MemoryStore(), access_log=True), loop)
    app = h.app

    async def worker(n: int) -> None:
        scope, proto = webhook_request(body(1))
        for _ in range(n):
            await app.__rsgi__(scope, proto)
        assert proto.status == 200, proto.response

    async def one_round(per_task: int) -> None:
        await asyncio.gather(*(worker(per_task) for _ in range(TASKS)))

    try:
        h.loop.run_until_complete(one_round(20))  # warm-up: caches, lazily made objects
        for _ in range(rounds):
            h.loop.run_until_complete(one_round(PER_TASK))
    finally:
        h.close()


def _instructions(rounds: int, full: bool, loop_name: str) -> int:
    argv = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--rounds",
        str(rounds),
        "--loop",
        loop_name,
        *(["--full"] if full else []),
    ]
    out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=900)
    m = re.search(r"Collected : (\d+)", out.stderr)
    if out.returncode != 0 or m is None:
        raise SystemExit(f"callgrind run failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return int(m.group(1))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--full", action="store_true", help="with bearer auth and the rate limit")
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio", help="the event loop (default asyncio)")
    p.add_argument("--rounds", type=int, help=argparse.SUPPRESS)  # the run under callgrind
    args = p.parse_args()
    if args.rounds is not None:
        _requests(args.rounds, args.full, args.loop)
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind not found (Debian: apt-get install -y valgrind)")
    one, four = _instructions(1, args.full, args.loop), _instructions(4, args.full, args.loop)
    per_request = (four - one) / (3 * TASKS * PER_TASK)
    stack = "full" if args.full else "default"
    print(
        f"{stack} stack, 1-alert request, in-memory store, {TASKS} concurrent, {args.loop}: "
        f"{per_request:,.0f} instructions per request"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
