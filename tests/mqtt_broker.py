"""A real mosquitto on loopback for the tests: TLS, one password per box, and the shipped ACL.

Register it for every test with ``pytest_plugins = ["tests.mqtt_broker"]`` in tests/conftest.py;
then any test can ask for the session-wide ``broker`` fixture::

    def test_box_reports(broker, tmp_path):
        login = broker.add_box("city-hall", "kita-01")
        settings = broker.mqtt_settings(login, "city-hall", "kita-01", spool_path=str(tmp_path / "spool.sqlite3"))
        watch = broker.subscriber("madoguchi/v1/city-hall/kita-01/#")
        ...  # run the box's telemetry with ``settings``
        watch.wait_for(lambda msgs: any(t.endswith("/status") for t, _, _ in msgs), timeout=5)
        watch.close()

The broker is the one a city runs, minus the production paths: the ACL is
firmware/madoguchi/fleet/broker/acl.example itself (a box's username is ``<site>/<box>`` and one
``%u`` pattern gives it its own prefix), passwords are hashed by ``mosquitto_passwd``, the
certificates come from a throwaway CA made by trustme. Besides the password listener on ``port``
there is a client-certificate listener on ``mtls_port`` (``require_certificate true``,
``use_identity_as_username true``): a certificate from ``client_cert("<site>/<box>")`` logs in as
that box without a password.

The broker is shared by the whole session: use site/box names of your own so tests do not see
each other's messages, and remember that ``restart()``/``kill()`` disconnect everyone.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
import pytest
import trustme

from tests.mqtt_clients import CONNECT_TIMEOUT_S, Collector, connect_client, disconnect

if TYPE_CHECKING:
    from madoguchi.config import MqttSettings

ROOT = Path(__file__).resolve().parents[1]
ACL_EXAMPLE = ROOT / "firmware" / "madoguchi" / "fleet" / "broker" / "acl.example"
ADMIN_USER = "admin"  # the names acl.example gives the admin and the dashboard
DASHBOARD_USER = "dashboard"
START_TIMEOUT_S = 10.0
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # one topic level, as madoguchi.config allows for site and box_id


@dataclass
class BoxLogin:
    username: str
    password_file: Path  # file holding just the password (no newline)

    @property
    def password(self) -> str:
        return self.password_file.read_text(encoding="utf-8")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class Broker:
    """One mosquitto process, its files under ``workdir``; ports are picked once and kept across restarts."""

    def __init__(self, workdir: Path, host: str = "127.0.0.1") -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = free_port(host)
        self.mtls_port = free_port(host)
        while self.mtls_port == self.port:
            self.mtls_port = free_port(host)
        self.conf_file = self.workdir / "mosquitto.conf"
        self.log_file = self.workdir / "mosquitto.log"
        self.stderr_file = self.workdir / "mosquitto.stderr"
        self.passwd_file = self.workdir / "passwd"
        self.acl_file = self.workdir / "acl"
        self.persistence_dir = self.workdir / "persistence"
        self.persistence_dir.mkdir(exist_ok=True)
        self._logins_dir = self.workdir / "logins"
        self._logins_dir.mkdir(exist_ok=True)
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: Any = None
        self._lock = threading.RLock()
        self._logins: dict[str, BoxLogin] = {}
        self._client_certs: dict[str, tuple[Path, Path]] = {}

        certs = self.workdir / "certs"
        certs.mkdir(exist_ok=True)
        self._ca = trustme.CA(organization_name="Madoguchi test site CA")
        self.ca_file = certs / "ca.crt"
        self._ca.cert_pem.write_to_path(str(self.ca_file))
        server = self._ca.issue_cert("127.0.0.1", "localhost", common_name="madoguchi-test-broker")
        self.server_cert_file = certs / "server.crt"
        self.server_key_file = certs / "server.key"
        self.server_cert_file.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
        self.server_key_file.write_bytes(server.private_key_pem.bytes())
        self.server_key_file.chmod(0o600)

        self.acl_file.write_text(ACL_EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
        self._run_passwd("-c", "-b", str(self.passwd_file), ADMIN_USER, self._new_login(ADMIN_USER, "admin").password)
        self._run_passwd("-b", str(self.passwd_file), DASHBOARD_USER, self._new_login(DASHBOARD_USER, "dashboard").password)
        self._write_config()

    # --- process ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start mosquitto and wait until its TLS listener completes a handshake (at most 10 s)."""
        with self._lock:
            if self.running:
                return
            self._write_config()
            self._stderr = open(self.stderr_file, "ab")
            self._proc = subprocess.Popen(["mosquitto", "-c", str(self.conf_file)], stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=self._stderr, preexec_fn=_die_with_parent())
            _live.add(self)
            deadline = time.monotonic() + START_TIMEOUT_S
            last_error: BaseException | None = None
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    break
                try:
                    self._tls_probe()
                    return
                except (OSError, ssl.SSLError) as err:
                    last_error = err
                    time.sleep(0.05)
            code = self._proc.poll()
            self._signal_and_reap(signal.SIGKILL, 1.0)
            state = f"exited with code {code}" if code is not None else f"did not accept TLS within {START_TIMEOUT_S:g} s (last error: {last_error})"
            raise RuntimeError(f"mosquitto on {self.host}:{self.port} {state}\n{self.diagnostics()}")

    def stop(self) -> None:
        """SIGTERM (mosquitto saves its persistence file on the way out), SIGKILL after 5 s."""
        with self._lock:
            self._signal_and_reap(signal.SIGTERM, 5.0)

    def kill(self) -> None:
        """SIGKILL: a crash. Whatever was not yet saved (retained messages, queued sessions) is lost."""
        with self._lock:
            self._signal_and_reap(signal.SIGKILL, 5.0)

    def restart(self) -> None:
        """Stop and start again on the same port with the same persistence: retained messages survive."""
        with self._lock:
            self.stop()
            self.start()

    def reload(self) -> None:
        """SIGHUP: mosquitto rereads the password and ACL files; connected clients stay connected."""
        with self._lock:
            if self.running:
                assert self._proc is not None
                self._proc.send_signal(signal.SIGHUP)

    def _signal_and_reap(self, sig: int, timeout: float) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(sig)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        _live.discard(self)

    def _tls_probe(self) -> None:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        with socket.create_connection((self.host, self.port), timeout=1.0) as raw, context.wrap_socket(raw, server_hostname=self.host):
            pass

    def diagnostics(self) -> str:
        """The config, the end of mosquitto's log and its stderr: for error messages."""

        def tail(path: Path, limit: int = 6000) -> str:
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                return "(none)"
            return text[-limit:] or "(empty)"

        return f"--- {self.conf_file} ---\n{tail(self.conf_file)}\n--- {self.log_file} ---\n{tail(self.log_file)}\n--- stderr ---\n{tail(self.stderr_file)}"

    def _write_config(self) -> None:
        tls = f"cafile {self.ca_file}\ncertfile {self.server_cert_file}\nkeyfile {self.server_key_file}\ntls_version tlsv1.2\n"
        lines = [
            "# written by tests/mqtt_broker.py",
            "per_listener_settings false",
            "allow_anonymous false",
            f"password_file {self.passwd_file}",
            f"acl_file {self.acl_file}",
            "persistence true",
            f"persistence_location {self.persistence_dir}",
            "persistence_file mosquitto.db",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_type subscribe",
            "connection_messages true",
            "log_timestamp_format %H:%M:%S",
            *(["user root"] if os.geteuid() == 0 else []),
            "",
            "# passwords; a client certificate is optional and not checked here",
            f"listener {self.port} {self.host}",
            tls + "require_certificate false",
            "",
            "# client certificates instead of passwords: the certificate's CN is the username",
            f"listener {self.mtls_port} {self.host}",
            tls + "require_certificate true",
            "use_identity_as_username true",
            "",
        ]
        self.conf_file.write_text("\n".join(lines), encoding="utf-8")

    # --- logins ----------------------------------------------------------------------------
    def _run_passwd(self, *args: str) -> None:
        result = subprocess.run(["mosquitto_passwd", *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"mosquitto_passwd {' '.join(args[:-1])} failed: {result.stderr.strip() or result.stdout.strip()}")

    def _new_login(self, username: str, file_stem: str) -> BoxLogin:
        path = self._logins_dir / f"{file_stem}.password"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(16), encoding="utf-8")
        path.chmod(0o600)
        login = BoxLogin(username, path)
        self._logins[username] = login
        return login

    def add_box(self, site: str, box: str) -> BoxLogin:
        """A login for one box: username ``<site>/<box>``, which acl.example's ``%u`` patterns turn
        into write on its status/health/usage/event/cmd_result and read on its cmd/#. Applied live
        (SIGHUP); returns once the broker accepts the new password. Same (site, box) -> same login."""
        for what, value in (("site", site), ("box", box)):
            if not _NAME.fullmatch(value):
                raise ValueError(f"{what} {value!r}: 1-64 letters, digits, '_', '.' or '-' (one topic level)")
        username = f"{site}/{box}"
        with self._lock:
            if username in self._logins:
                return self._logins[username]
            login = self._new_login(username, f"boxes/{site}/{box}")
            self._run_passwd("-b", str(self.passwd_file), username, login.password)
            if self.running:
                self.reload()
                self._wait_accepted(login)
            return login

    def admin(self) -> BoxLogin:
        """Reads madoguchi/v1/#, writes madoguchi/v1/+/+/cmd/# (acl.example's ``user admin``)."""
        return self._logins[ADMIN_USER]

    def dashboard(self) -> BoxLogin:
        """Read-only on the boxes' five outgoing leaves and $SYS (acl.example's ``user dashboard``)."""
        return self._logins[DASHBOARD_USER]

    def _wait_accepted(self, login: BoxLogin) -> None:
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        reason: Any = None
        while time.monotonic() < deadline:
            client, reason = connect_client(self, login, client_id=f"probe-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv311)
            if client is not None:
                disconnect(client)
                return
            time.sleep(0.05)
        raise RuntimeError(f"the broker still refuses {login.username} {CONNECT_TIMEOUT_S:g} s after reloading its password file (last answer: {reason})\n{self.diagnostics()}")

    def client_cert(self, name: str) -> tuple[Path, Path]:
        """(cert, key) PEM files signed by the CA, common name ``name``. On ``mtls_port`` the CN is the
        username, so ``client_cert("<site>/<box>")`` logs in as that box; on ``port`` it is just carried."""
        with self._lock:
            if name not in self._client_certs:
                slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
                leaf = self._ca.issue_cert(f"{re.sub(r'[^a-z0-9-]+', '-', name.lower()).strip('-') or 'client'}.clients.invalid", common_name=name)
                folder = self.workdir / "certs" / "clients"
                folder.mkdir(parents=True, exist_ok=True)
                cert, key = folder / f"{slug}-{len(self._client_certs)}.crt", folder / f"{slug}-{len(self._client_certs)}.key"
                cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
                key.write_bytes(leaf.private_key_pem.bytes())
                key.chmod(0o600)
                self._client_certs[name] = (cert, key)
            return self._client_certs[name]

    # --- for boxes and watchers ------------------------------------------------------------
    def mqtt_settings(self, login: BoxLogin, site: str, box: str, **overrides: Any) -> MqttSettings:
        """[mqtt] settings for a box talking to this broker; ``spool_path=`` is required (keep it under tmp_path)."""
        from madoguchi.config import MqttSettings

        if "spool_path" not in overrides:
            raise TypeError("mqtt_settings() needs spool_path=... (a file under tmp_path; the default is /var/lib/madoguchi)")
        values: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "tls": True,
            "ca_file": str(self.ca_file),
            "username": login.username,
            "password_file": str(login.password_file),
            "site": site,
            "box_id": box,
        }
        values.update({key: str(value) if isinstance(value, Path) else value for key, value in overrides.items()})
        return MqttSettings(**values)

    def subscriber(self, topic_filter: str, login: BoxLogin | None = None) -> Collector:
        """A connected MQTT 5 client (admin by default) subscribed to ``topic_filter`` at QoS 1 with
        retain-as-published, so ``retain`` says whether the publisher retained it. Returns after the SUBACK."""
        return Collector(self, topic_filter, login or self.admin())


_live: set[Broker] = set()


def _die_with_parent() -> Callable[[], None] | None:
    """For Popen: mosquitto gets SIGTERM when pytest dies, even by SIGTERM/SIGKILL (CI timeouts),
    where no finaliser or atexit runs. Linux's parent-death signal fires when the *thread* that
    forked exits, so it is set only when starting from the main thread."""
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def arm() -> None:
        prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl: nobody would signal us
            os._exit(1)

    return arm


@atexit.register
def _kill_leftovers() -> None:
    """Belt and braces: if the fixture's finaliser never ran (interpreter exit), do not leave mosquitto behind."""
    for broker in list(_live):
        broker.kill()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One mosquitto for the whole test session (see the module docstring)."""
    if shutil.which("mosquitto") is None or shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto and mosquitto_passwd are not installed (Debian: apt install mosquitto)")
    instance = Broker(tmp_path_factory.mktemp("mqtt-broker"))
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()
