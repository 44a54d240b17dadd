#!/usr/bin/python3
"""`make durability`: the crash matrix (README.md). Every scenario on both store engines
(PostgreSQL in a throw-away cluster of tests/pg_cluster.sh), a table at the end, exit
status 1 when anything was lost or truncated or another invariant broke.

usage: run.py [--iterations N] [--engines sqlite,postgresql] [--scenarios a,b] [--seed S]"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import matrix  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=int(os.environ.get("DURABILITY_ITERATIONS", "10")))
    ap.add_argument("--engines", default="sqlite,postgresql")
    ap.add_argument("--scenarios", default=",".join(s.name for s in matrix.SCENARIOS))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("DURABILITY_SEED", "0")))
    ap.add_argument("--pgurl", default=os.environ.get("POSTHORN_TEST_PGURL"),
                    help="a running cluster (tests/pg_cluster.sh) instead of a new one")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    engines = args.engines.split(",")
    names = args.scenarios.split(",")
    for n in names:
        if n not in matrix.SCENARIO_BY_NAME:
            ap.error("unknown scenario %s" % n)
    work = Path(tempfile.mkdtemp(prefix="posthorn-durability."))
    # Its own directory: the cluster runs as the postgres user when we are root, and work
    # is private to us.
    pgdir = Path(tempfile.mkdtemp(prefix="posthorn-pg."))
    pgurl = args.pgurl
    own_pg = False
    results = []
    try:
        if "postgresql" in engines and not pgurl:
            own_pg = True
            pgurl = subprocess.run(["sh", str(matrix.REPO / "tests" / "pg_cluster.sh"), "start",
                                    str(pgdir)], check=True, stdout=subprocess.PIPE,
                                   text=True).stdout.strip()
        for name in names:
            for engine in engines:
                if engine not in matrix.SCENARIO_BY_NAME[name].engines:
                    continue
                t0 = time.monotonic()
                c = matrix.run_point(name, engine, args.iterations, work / ("%s-%s" % (name, engine)),
                                     seed=args.seed, pgurl=pgurl,
                                     log=print if args.verbose else None)
                results.append(c)
                print("%-26s %-10s %3d iterations, %d fired, lost %d, dup %d, trunc %d, bad %d"
                      " (%.0f s)" % (name, engine, c.iterations, c.fired, c.lost, c.duplicated,
                                     c.truncated, c.bad, time.monotonic() - t0), flush=True)
                for p in c.problems:
                    print("    " + p, flush=True)
    finally:
        if own_pg:
            subprocess.run(["sh", str(matrix.REPO / "tests" / "pg_cluster.sh"), "stop", str(pgdir)],
                           capture_output=True)
        subprocess.run(["rm", "-rf", str(pgdir)])
    print()
    print(matrix.format_table(results))
    bad = [c for c in results if not c.ok()]
    print("\n%s: %d of %d rows clean" % ("FAILED" if bad else "ok", len(results) - len(bad),
                                          len(results)))
    if not bad:
        subprocess.run(["rm", "-rf", str(work)])
    else:
        print("data directories kept in %s" % work)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
