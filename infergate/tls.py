"""Serving TLS whose certificate files can be replaced on disk (a rotated Secret) without a restart.

`SSLContext.load_cert_chain` on the live context changes the certificate for new handshakes only, so
connections already open, and requests on them, are never dropped.

The live context is only ever loaded with a pair that is known to match: a failed `load_cert_chain` is not
harmless, because OpenSSL installs the certificate before it checks the key, and a certificate whose key does
not match leaves the context with no usable key: every new handshake then fails until the next good reload.
Files replaced one after the other (tls.crt, then tls.key) are seen mismatched for a moment, so each reload
reads both files once, checks that copy on a scratch context, and loads the live context from the same copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


def _new_context() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@contextlib.contextmanager
def _as_files(cert: bytes, key: bytes) -> Iterator[tuple[str, str]]:
    """The two PEM blobs as paths `load_cert_chain` can read: in memory where Linux allows (the key never
    touches a disk), else in a private temporary directory."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fds = [os.memfd_create(name, os.MFD_CLOEXEC) for name in ("tls.crt", "tls.key")]
        try:
            for fd, data in zip(fds, (cert, key)):
                os.write(fd, data)
            yield f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}"
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="infergate-tls-") as directory:  # mode 0700
        paths = (os.path.join(directory, "tls.crt"), os.path.join(directory, "tls.key"))
        for path, data in zip(paths, (cert, key)):
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as fh:
                fh.write(data)
        yield paths


class ReloadingTLS:
    def __init__(self, cert_file: str | Path, key_file: str | Path, interval: float = 2.0):
        self.cert_file = Path(cert_file)
        self.key_file = Path(key_file)
        self.interval = interval  # seconds between checks of the files by watch()
        self.context = _new_context()
        self._stamp = self._read_stamp()
        self.context.load_cert_chain(self.cert_file, self.key_file)
        self.reloads = 0

    def _read_stamp(self) -> tuple[float, float, int, int]:
        cert, key = self.cert_file.stat(), self.key_file.stat()
        return (cert.st_mtime, key.st_mtime, cert.st_ino, key.st_ino)

    def reload_if_changed(self) -> bool:
        try:
            # The stamp is read first: files that change after it are seen again on the next check.
            stamp = self._read_stamp()
            if stamp == self._stamp:
                return False
            cert, key = self.cert_file.read_bytes(), self.key_file.read_bytes()
            with _as_files(cert, key) as (cert_copy, key_copy):
                _new_context().load_cert_chain(cert_copy, key_copy)  # raises, and the live context is untouched
                self.context.load_cert_chain(cert_copy, key_copy)  # the same bytes: cannot fail now
        except (OSError, ssl.SSLError) as exc:
            # Half-written or half-swapped files: keep serving the old certificate and try again next tick.
            log.warning("TLS files %s, %s not reloaded yet: %s", self.cert_file, self.key_file, exc)
            return False
        self._stamp = stamp
        self.reloads += 1
        log.info("reloaded TLS certificate from %s", self.cert_file)
        return True

    async def watch(self, interval: float | None = None) -> None:
        while True:
            await asyncio.sleep(self.interval if interval is None else interval)
            self.reload_if_changed()
