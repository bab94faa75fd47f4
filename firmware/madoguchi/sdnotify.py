"""systemd's sd_notify protocol (READY, STATUS, WATCHDOG, STOPPING) over $NOTIFY_SOCKET.

A dozen lines of datagram socket: not worth a dependency (the PyPI ``sdnotify`` package is
unmaintained since 2017; ``systemd-python`` needs libsystemd headers to build on the Pi).
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Does nothing when not started by systemd (no NOTIFY_SOCKET), so it is always safe to call."""

    def __init__(self, address: str | None = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):  # abstract namespace socket
            address = "\0" + address[1:]
        self._address = address or None

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, **fields: str) -> None:
        if not self._address:
            return
        message = "\n".join(f"{k.upper()}={v}" for k, v in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                # Called on the event loop: a listener that stopped reading must not stall the
                # service (a full queue drops this status; the next one says more anyway).
                sock.setblocking(False)
                sock.sendto(message, self._address)
        except BlockingIOError:
            log.debug("sd_notify queue at %r is full; dropped %s", self._address, message[:60])
        except OSError as err:
            log.warning("sd_notify to %r failed: %s", self._address, err)

    def watchdog_interval_s(self) -> float | None:
        """Half the WatchdogSec systemd asked for, or None when there is no watchdog."""
        usec = os.environ.get("WATCHDOG_USEC")
        if not usec or not self._address:
            return None
        return int(usec) / 2e6
