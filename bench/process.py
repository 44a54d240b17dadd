"""Stopping a benchmark's helper process (a DNS server, an SMTP sink)."""

import subprocess


def stop(proc):
    """Terminates proc if it still runs, kills it after 10 s; returns None to store in its
    place."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return None
