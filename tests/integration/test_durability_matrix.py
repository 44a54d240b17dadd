"""The quick slice of the crash matrix (tests/durability/, `make durability` runs all of
it): a few fault points, one iteration each with the fault on its first hit and a kill -9,
on the suite's store engine. Each must lose nothing, truncate nothing and keep the store's
invariants (UIDs, integrity, no orphan files after start-up)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "durability"))
import matrix  # noqa: E402
from conftest import PGURL, TEST_STORE  # noqa: E402


@pytest.mark.parametrize("scenario", matrix.QUICK)
def test_fault_point(scenario, tmp_path):
    if TEST_STORE not in matrix.SCENARIO_BY_NAME[scenario].engines:
        pytest.skip("%s does not apply to %s" % (scenario, TEST_STORE))
    c = matrix.run_point(scenario, TEST_STORE, 1, tmp_path / "srv", pgurl=PGURL or None,
                         action="sigkill", nth=1)
    assert c.iterations == 1 and c.fired == 1, "the fault point did not fire"
    assert c.ok(), "\n".join(c.problems)


def test_harness_detects_loss(tmp_path):
    """Negative control: a crash that also cuts the newest message file short must show
    up as truncated (or lost), else the checks above prove nothing."""
    def crash_and_truncate(server):
        server.kill()
        files = sorted((f for fan in (server.dir / "data" / "messages").iterdir()
                        for f in fan.iterdir()), key=lambda f: f.stat().st_mtime)
        if files:
            with open(files[-1], "r+b") as f:
                f.truncate(f.seek(0, 2) // 2)
    if TEST_STORE != "sqlite":
        pytest.skip("message files exist on SQLite only")
    c = matrix.run_point("store.blob.before_row", TEST_STORE, 1, tmp_path / "srv",
                         crash=crash_and_truncate, action="delay_1", nth=1)
    assert c.truncated + c.lost > 0, "a truncated message file went unnoticed"


def test_pg_commit_answer_lost(tmp_path):
    """PostgreSQL: a COMMIT whose answer is lost (the connection cut after it went out) is
    resolved by its transaction id; the group it held is not run again one by one, which
    stored messages twice that no client had sent twice (`bad` in the matrix)."""
    if not PGURL:
        pytest.skip("no PostgreSQL cluster (POSTHORN_TEST_PGURL)")
    c = matrix.run_point("pg.commit.lost", "postgresql", 3, tmp_path / "srv", pgurl=PGURL)
    assert c.fired >= 1, "the fault point did not fire"
    assert c.ok() and c.bad == 0, "\n".join(c.problems)
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "srv").glob("*.log"))
    assert "event=commit-resolved" in logs, "no COMMIT was resolved"
