"""pytest-xdist plumbing: the controller hands its run id to every worker."""

from __future__ import annotations

from typing import Any

import pytest


def is_worker(config: pytest.Config) -> bool:
    """Whether this pytest process is an xdist worker (the controller owns the run)."""
    return hasattr(config, "workerinput")


def worker_run_id(config: pytest.Config) -> str | None:
    """The controller's run id on an xdist worker, else None."""
    workerinput = getattr(config, "workerinput", None)
    run_id = workerinput.get("adsreplay_run_id") if workerinput else None
    return str(run_id) if run_id else None


class XdistPlugin:
    """Registered on the controller: every worker shares the controller's run id."""

    def __init__(self, run_id: str):
        self.run_id = run_id

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["adsreplay_run_id"] = self.run_id
