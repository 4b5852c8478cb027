"""Run every benchmark, one after the other, and print their figures.

    python -m bench                 # all: sizes, throughput, handoff, browser (about 10 minutes)
    python -m bench --quick         # shorter runs (sizes, 3 s loads, 5 browser runs): a smoke test of the scripts
    python -m bench sizes handoff   # only these

Needs, besides the test dependencies: wrk and nginx (throughput), redis-server (handoff on Redis), the browsers
of e2e/ (browser). Run it on an otherwise idle machine: the figures are rates and latencies.
"""

from __future__ import annotations

import argparse
import sys
import time

from bench import browser, handoff, sizes, throughput

BENCHMARKS = {
    "sizes": (sizes.main, [], []),
    "throughput": (throughput.main, ["--seconds", "5", "--rounds", "3"], ["--seconds", "2", "--rounds", "1"]),
    "handoff": (handoff.main, ["--seconds", "10"], ["--seconds", "3"]),
    "browser": (browser.main, ["--runs", "20"], ["--runs", "5"]),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="short runs: checks the scripts, not for RESULTS.md")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}")
    failed = []
    for name in args.names or list(BENCHMARKS):
        run, full, quick = BENCHMARKS[name]
        print(f"\n===== bench {name} =====", flush=True)
        began = time.monotonic()
        status = run(quick if args.quick else full)
        print(f"===== bench {name}: {'ok' if status == 0 else f'exit {status}'} in {time.monotonic() - began:.0f} s",
              flush=True)
        if status:
            failed.append(name)
    if failed:
        print(f"bench: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
