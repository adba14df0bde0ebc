"""Serving TLS whose certificate files can be replaced on disk (a rotated Secret) without a restart.

`SSLContext.load_cert_chain` on the live context changes the certificate for new handshakes only, so
connections already open, and requests on them, are never dropped.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

log = logging.getLogger(__name__)


class ReloadingTLS:
    def __init__(self, cert_file: str | Path, key_file: str | Path):
        self.cert_file = Path(cert_file)
        self.key_file = Path(key_file)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._stamp = self._read_stamp()
        self.context.load_cert_chain(self.cert_file, self.key_file)
        self.reloads = 0

    def _read_stamp(self) -> tuple[float, float, int, int]:
        cert, key = self.cert_file.stat(), self.key_file.stat()
        return (cert.st_mtime, key.st_mtime, cert.st_ino, key.st_ino)

    def reload_if_changed(self) -> bool:
        try:
            stamp = self._read_stamp()
            if stamp == self._stamp:
                return False
            self.context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            # Half-written files during a swap: keep serving the old certificate and try again next tick.
            log.warning("TLS files %s, %s not reloaded yet: %s", self.cert_file, self.key_file, exc)
            return False
        self._stamp = stamp
        self.reloads += 1
        log.info("reloaded TLS certificate from %s", self.cert_file)
        return True

    async def watch(self, interval: float = 2.0) -> None:
        while True:
            await asyncio.sleep(interval)
            self.reload_if_changed()
