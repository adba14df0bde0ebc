"""Hot reload of a mounted policy directory.

A ConfigMap volume is updated by writing a new timestamped directory and swapping the `..data` symlink, so the
visible files change all at once. The watcher stamps the directory (where `..data` points, and each file's
size and mtime); when the stamp changes it loads the whole directory, and only a policy that loads without a
single problem replaces the one in force, in one assignment: a request sees the old policy or the new one,
never a mix. A bad policy is logged with every problem and counted; the last good one keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from policies.loader import Policy, PolicyError, load_policy

log = logging.getLogger(__name__)


def directory_stamp(directory: Path) -> tuple:
    try:
        data_link = os.readlink(directory / "..data") if (directory / "..data").is_symlink() else ""
        entries = []
        for entry in sorted(directory.iterdir()):
            if entry.name.startswith("."):
                continue
            stat = entry.stat()
            entries.append((entry.name, stat.st_size, stat.st_mtime_ns, stat.st_ino))
        return (data_link, tuple(entries))
    except OSError:
        return ("unreadable",)


class PolicyWatcher:
    def __init__(self, directory: str | Path, policy: Policy, on_result: Callable[[str], None] = lambda _result: None):
        self.directory = Path(directory)
        self.policy = policy
        self.on_result = on_result  # called with "ok" or "error" after each load, for metrics
        self.last_error: str | None = None
        self._stamp = directory_stamp(self.directory)

    def check(self) -> bool:
        """Reload if the directory changed; True when a new policy is now in force."""
        stamp = directory_stamp(self.directory)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            policy = load_policy(self.directory)
        except PolicyError as exc:
            self.last_error = str(exc)
            log.error("policy in %s rejected; the last good policy (%s) keeps serving:\n%s",
                      self.directory, self.policy.digest, exc)
            self.on_result("error")
            return False
        self.policy = policy
        self.last_error = None
        log.info("policy reloaded from %s (%s)", self.directory, policy.digest)
        self.on_result("ok")
        return True

    async def watch(self, interval: float = 2.0) -> None:
        while True:
            await asyncio.sleep(interval)
            self.check()
