#!/usr/bin/python3
"""fsync probe for the Posthorn benchmarks (bench/run): how many durable writes per second
the disk under a directory completes, one after another from one thread.

Each step appends 4 KiB to a file in DIR and calls fsync() (the pattern of a write-ahead log
commit: data plus the size change in the file system journal). The result is the physical
ceiling for a server that fsyncs once per message; group commit gets above it by storing
many messages per fsync. Standard library only.

    fsync_probe.py DIR [--seconds 3]     prints "fsyncs_per_s=... mean_us=... n=..."
"""

import argparse
import os
import sys
import tempfile
import time

BLOCK = 4096
MAX_FILE = 64 * 1024 * 1024  # start a new file past this size


def probe(directory, seconds):
    """(fsyncs per second, number of fsyncs) over about `seconds` of continuous work."""
    data = os.urandom(BLOCK)
    fd, path = tempfile.mkstemp(prefix="fsync-probe-", dir=directory)
    try:
        # One warm-up sync so that file creation is not counted.
        os.write(fd, data)
        os.fsync(fd)
        n = 0
        written = BLOCK
        start = time.perf_counter()
        deadline = start + seconds
        now = start
        while now < deadline:
            if written >= MAX_FILE:
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                written = 0
            os.write(fd, data)
            os.fsync(fd)
            written += BLOCK
            n += 1
            now = time.perf_counter()
        return n / (now - start), n
    finally:
        os.close(fd)
        os.unlink(path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("directory")
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args(argv)
    rate, n = probe(args.directory, args.seconds)
    print("fsyncs_per_s=%.0f mean_us=%.1f n=%d" % (rate, 1e6 / rate if rate else 0, n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
