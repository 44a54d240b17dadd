"""The RFC 7208 test suite (the SPF council's, as Debian's python3-spf ships it): every case
of every scenario against smtp/spf's evaluator. The scenario's zone data become DNS answers
(with the suite's conventions: SPF-type records stand in for TXT where a name has no TXT,
TIMEOUT entries, one level of CNAME) that tests/unit/spf_suite.c hands to the evaluator;
each case must give one of the results the suite allows, and the explanation where the
suite names one."""

import gzip
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import BIN

SUITE = Path("/usr/share/doc/python3-spf/rfc7208-tests.yml.gz")
DRIVER = Path(BIN).parent / "tests" / "spf_suite"
TYPES = ("A", "AAAA", "MX", "PTR", "TXT")


def scenarios():
    assert SUITE.exists(), "%s is missing: install python3-spf (tests/deps.sh)" % SUITE
    with gzip.open(SUITE, "rt", encoding="utf-8") as f:
        return list(yaml.safe_load_all(f))


def records(items):
    """A name's zone entries as (type, value) in order, TXT made from SPF where the name has
    no TXT of its own, "NONE" values dropped; a bare TIMEOUT stays ("TIMEOUT", None)."""
    out, spf, has_txt = [], [], False
    for item in items:
        if item == "TIMEOUT":
            out.append(("TIMEOUT", None))
            continue
        (t, v), = item.items()
        if t in ("TXT", "SPF") and isinstance(v, str):
            v = [v]
        has_txt |= t == "TXT"
        if t == "SPF" and v != ["NONE"]:
            spf.append(("TXT", v))
        if v != ["NONE"]:
            out.append((t, v))
    return out + ([] if has_txt else spf)


def value_text(t, v):
    if t == "MX":
        return v[1]
    if t == "TXT":
        return "".join(v)
    return v


def answer(zone, name, qtype, follow=True):
    """(status, values) for a query, as the suite's conventions have it."""
    items = zone.get(name.lower())
    if items is None:
        return ("NX", [])
    values, seen = [], False
    for t, v in items:
        if t == "TIMEOUT" and not seen:
            return ("TEMP", [])
        if t == qtype:
            seen = True
            if v == "TIMEOUT":
                return ("TEMP", [])
            values.append(value_text(t, v))
        elif t == "CNAME" and follow:
            status, more = answer(zone, v, qtype, follow=False)
            if status == "TEMP":
                return ("TEMP", [])
            values += more
    return ("OK", values)


def hexed(s):
    return s.encode("utf-8").hex() if s else "-"


def driver_input(scenario):
    zone = {name.lower(): records(items) for name, items in
            (scenario.get("zonedata") or {}).items()}
    lines = ["Z"]
    for name in zone:
        for qtype in TYPES:
            status, values = answer(zone, name, qtype)
            lines.append(" ".join(["A", hexed(name), qtype, status] +
                                  [hexed(v) for v in values]))
    for tid, case in scenario["tests"].items():
        lines.append("T %s %s %s %s" % (tid, case["host"], hexed(case.get("mailfrom") or ""),
                                        hexed(case.get("helo") or "")))
    return "\n".join(lines) + "\n"


def run_suite():
    out = {}
    for scenario in scenarios():
        p = subprocess.run([str(DRIVER)], input=driver_input(scenario).encode("utf-8"),
                           capture_output=True, timeout=120)
        assert p.returncode == 0, p.stderr.decode(errors="replace")
        for line in p.stdout.decode().splitlines():
            tid, result, exp, *problem = line.split(" ", 3)
            out[tid] = (result, "" if exp == "-" else bytes.fromhex(exp).decode("utf-8", "replace"),
                        problem[0] if problem else "")
    return out


def test_every_case_of_the_rfc7208_suite():
    results = run_suite()
    wrong, total = [], 0
    for scenario in scenarios():
        for tid, case in scenario["tests"].items():
            total += 1
            want = case["result"] if isinstance(case["result"], list) else [case["result"]]
            got, exp, problem = results[tid]
            if got not in want:
                wrong.append("%s: %s, want %s (%s) [%s]" % (tid, got, "/".join(want), problem,
                                                             scenario["description"]))
            # The suite's drivers give "DEFAULT" where a record has no usable explanation.
            elif "explanation" in case and got == "fail" and (exp or "DEFAULT") != case[
                    "explanation"]:
                wrong.append("%s: explanation %r, want %r" % (tid, exp, case["explanation"]))
    assert total > 150
    assert not wrong, "%d of %d cases differ:\n%s" % (len(wrong), total, "\n".join(wrong))
