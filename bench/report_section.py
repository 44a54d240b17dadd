"""One bench's section of docs/benchmarks.md, between its start and end markers: put into the
report (replacing an earlier one), or kept when bench/run rewrites the whole report without
running that bench."""

import importlib.machinery
import importlib.util
from pathlib import Path

MEASURED = "\n## How it is measured"


def merge_into(path, section, start, end):
    """Put section into the report at path: replace the one between start and end, or
    insert it before "## How it is measured" (else at the end)."""
    p = Path(path)
    text = p.read_text() if p.exists() else ""
    p.write_text(_put(text, section, start, end, replace=True))


def carry_over(old_text, new_text, start, end):
    """The section of old_text, put into new_text unless new_text has its own."""
    if start not in old_text or end not in old_text or start in new_text:
        return new_text
    a = old_text.index(start)
    b = old_text.index(end) + len(end)
    return _put(new_text, old_text[a:b], start, end, replace=False)


def _put(text, section, start, end, replace):
    if replace and start in text and end in text:
        a = text.index(start)
        b = text.index(end) + len(end)
        return text[:a] + section + text[b:]
    if MEASURED in text:
        i = text.index(MEASURED)
        return text[:i] + "\n" + section + "\n" + text[i:]
    if not text.strip():
        return section + "\n"
    return text.rstrip("\n") + "\n\n" + section + "\n"


class Section:
    """A bench's markers, with merge_into(path, section) and carry_over(old, new) bound to
    them: bench/run calls those two on every bench module."""

    def __init__(self, start, end):
        self.start, self.end = start, end

    def merge_into(self, path, section):
        merge_into(path, section, self.start, self.end)

    def carry_over(self, old_text, new_text):
        return carry_over(old_text, new_text, self.start, self.end)


def load_run():
    """bench/run (a script without .py) as a module, for the benches run on their own."""
    path = Path(__file__).resolve().parent / "run"
    loader = importlib.machinery.SourceFileLoader("bench_run", str(path))
    spec = importlib.util.spec_from_loader("bench_run", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod
