"""systemd's side of sd_notify for the tests and benchmarks: a datagram socket the service writes to.

Read all the time by a thread: a service sending WATCHDOG every 0.5 s fills an unread socket's
small queue and then drops what it says next (STOPPING included). Every message is kept with the
time it came, so a test can wait for the next STATUS after a fault rather than find the one before.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path


class NotifySocket:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self.ready = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, name="notify-socket", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._closed.is_set():
            try:
                data = self.sock.recv(65536).decode(errors="replace")
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            message = dict(line.split("=", 1) for line in data.splitlines() if "=" in line)
            self.messages.append((time.monotonic(), message))
            if message.get("READY") == "1":
                self.ready.set()

    def mark(self) -> int:
        """Where ``wait(..., since=mark())`` starts looking."""
        return len(self.messages)

    def wait(self, key: str, value: str | None = None, *, since: int = 0, contains: str = "", timeout: float = 10.0) -> tuple[float, dict[str, str]]:
        """The first message since ``since`` with ``key`` (equal to ``value``, containing ``contains``) and when it came."""
        deadline = time.monotonic() + timeout
        while True:
            for at, message in self.messages[since:]:
                if key in message and (value is None or message[key] == value) and contains in message[key]:
                    return at, message
            if time.monotonic() > deadline:
                raise AssertionError(f"no {key}={value or contains!r} within {timeout} s; got {[m for _, m in self.messages[since:]]}")
            time.sleep(0.02)

    def wait_for(self, key: str, value: str | None = None, timeout: float = 30.0, contains: str = "") -> dict[str, str]:
        return self.wait(key, value, contains=contains, timeout=timeout)[1]

    def values(self, key: str, since: int = 0) -> list[str]:
        return [m[key] for _, m in self.messages[since:] if key in m]

    def first(self, key: str) -> float | None:
        return next((t for t, m in self.messages if key in m), None)

    def times(self, key: str) -> list[float]:
        return [t for t, m in self.messages if key in m]

    def close(self) -> None:
        self._closed.set()
        self._thread.join(2.0)
        self.sock.close()
