"""The plugin loads in every pytest run where it is installed: importing it must not
import the libraries only some runs need (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Libraries a plain import of the plugin must leave alone: the fleet bounds, the report's
#: plots, the PostgreSQL store, object storage, and the broker and MF4 stack (loaded when
#: the session replays something).
LAZY = ("scipy", "matplotlib", "psycopg", "fsspec", "s3fs", "asammdf", "rq", "fakeredis")


def _imported_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return {name.split(".")[0] for name in json.loads(out.strip().splitlines()[-1])}


@pytest.mark.parametrize(
    "statement",
    ["import pytest_adsreplay.plugin", "import pytest_adsreplay", "import pytest_adsreplay.fleet"],
)
def test_a_plain_import_leaves_the_heavy_libraries_alone(statement: str) -> None:
    loaded = _imported_after(statement)
    assert "pytest_adsreplay" in loaded  # the check can see an import
    assert sorted(loaded & set(LAZY)) == []


def test_the_fleet_summary_needs_no_scipy() -> None:
    loaded = _imported_after(
        "from pytest_adsreplay.fleet.stats import clopper_pearson, poisson_upper, lower_bound\n"
        "clopper_pearson(3, 10); poisson_upper(2, 5.0); lower_bound(9, 10)"
    )
    assert "scipy" not in loaded


def test_the_in_process_worker_freezes_the_imports_once() -> None:
    """The replay's long-lived objects leave the garbage collector's scans; a second
    session in the same process (pytester) does not pin the first one's garbage."""
    code = (
        "import gc, json\n"
        "from pytest_adsreplay.queue import broker\n"
        "conn = broker.connect(None)\n"
        "before = gc.get_freeze_count()\n"
        "broker.in_process_worker(conn, list(broker.make_queues(conn, 'a').values()))\n"
        "first = gc.get_freeze_count()\n"
        "junk = [[i] for i in range(5000)]\n"
        "broker.in_process_worker(conn, list(broker.make_queues(conn, 'b').values()))\n"
        "print(json.dumps([before, first, gc.get_freeze_count()]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    before, first, second = json.loads(out.strip().splitlines()[-1])
    assert before == 0 and first > 10_000 and second <= first  # junk made since: not frozen
