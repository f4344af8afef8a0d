"""pytest-xdist plumbing: the controller hands its run id to every worker."""

from __future__ import annotations

import contextlib
import os
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
    """Registered on the controller: every worker shares the controller's run id, and a
    SIGTERM of the controller reaches the workers (they write the rows of their chains)."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.worker_pids: set[int] = set()

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["adsreplay_run_id"] = self.run_id

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodeready(self, node: Any) -> None:
        pid = (getattr(node, "workerinfo", None) or {}).get("pid")
        if isinstance(pid, int) and pid != os.getpid():
            self.worker_pids.add(pid)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        self.worker_pids.discard((getattr(node, "workerinfo", None) or {}).get("pid"))

    def forward(self, signum: int) -> bool:
        """Send ``signum`` to every live worker; whether there was one."""
        sent = False
        for pid in list(self.worker_pids):
            with contextlib.suppress(OSError):
                os.kill(pid, signum)
                sent = True
        return sent
