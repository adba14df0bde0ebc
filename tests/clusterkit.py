"""A local control plane for a test module or session: skipped when the binaries are missing, unless
INFERGATE_E2E_REQUIRED is set (as `make test` and CI set it), so a broken build never passes as green."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devcluster import ClusterError, LocalCluster, default_bin_dir, missing_binaries
from devcluster import controllers as ecosystem


def required() -> bool:
    return os.environ.get("INFERGATE_E2E_REQUIRED", "").lower() not in ("", "0", "false", "no")


def running_cluster(work_dir: Path, **options: Any) -> Iterator[LocalCluster]:
    """options go to LocalCluster; controllers=("lws", ...) also runs those ecosystem controllers."""
    missing = missing_binaries()
    unbuilt = ecosystem.missing(options.get("controllers", ()))
    message = ""
    if missing:
        message = (f"control-plane binaries missing in {default_bin_dir()}: {', '.join(missing)}; "
                   "build them with `make controlplane` (devcluster/build.sh)")
    elif unbuilt:
        message = (f"controllers not built: {', '.join(unbuilt)}; build them with "
                   f"`bash devcluster/build.sh {' '.join(unbuilt)}` (`make setup` builds them all)")
    if message:
        if required():
            pytest.fail(f"INFERGATE_E2E_REQUIRED is set but {message}", pytrace=False)
        pytest.skip(message)
    local = LocalCluster(work_dir=work_dir, **options)
    try:
        local.start()
    except ClusterError as exc:
        pytest.fail(f"the local control plane did not start: {exc}", pytrace=False)
    try:
        yield local
    finally:
        local.stop()
