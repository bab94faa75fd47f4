"""MQTT clients for the telemetry tests: connect as a box or the admin, collect what arrives.

Split from ``mqtt_broker.py`` (the mosquitto fixture) so each file keeps one job.
"""

from __future__ import annotations

import ssl
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

if TYPE_CHECKING:
    from tests.mqtt_broker import BoxLogin, Broker

CONNECT_TIMEOUT_S = 5.0


class Collector:
    """Everything that arrives on one subscription, in order. ``granted`` holds the SUBACK reason codes
    (mosquitto 2.0 grants any filter and applies the ACL to each message, so a filter the login may
    not read is granted but stays empty). A collector does not outlive ``restart()``/``kill()``:
    make a new one afterwards (it gets the retained messages again)."""

    def __init__(self, broker: Broker, topic_filter: str, login: BoxLogin) -> None:
        self.topic_filter = topic_filter
        self.username = login.username
        self.messages: list[tuple[str, bytes, bool]] = []
        self.granted: list[Any] = []
        self._cond = threading.Condition()
        suback = threading.Event()
        client, reason = connect_client(broker, login, client_id=f"collector-{uuid.uuid4().hex[:12]}", protocol=mqtt.MQTTv5, on_message=self._on_message)
        if client is None:
            raise AssertionError(f"subscriber as {login.username!r} could not connect: {reason}")
        self._client = client

        def on_subscribe(c: Any, userdata: Any, mid: int, reason_codes: list[Any], properties: Any) -> None:
            self.granted = list(reason_codes)
            suback.set()

        client.on_subscribe = on_subscribe
        client.subscribe(topic_filter, options=SubscribeOptions(qos=1, retainAsPublished=True))
        if not suback.wait(CONNECT_TIMEOUT_S):
            self.close()
            raise AssertionError(f"no SUBACK for {topic_filter!r} within {CONNECT_TIMEOUT_S:g} s")

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[list[tuple[str, bytes, bool]]], bool], timeout: float) -> None:
        """Return once ``predicate(messages so far)`` is true; AssertionError with what did arrive after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(list(self.messages)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(self._summary(timeout))
                self._cond.wait(min(remaining, 0.5))

    def _summary(self, timeout: float) -> str:
        refused = [str(code) for code in self.granted if code.is_failure]
        head = f"timed out after {timeout:g} s on {self.topic_filter!r} (as {self.username!r})"
        if refused:
            head += f"; the subscription was REFUSED: {', '.join(refused)}"
        lines = [f"{head}; {len(self.messages)} message(s) arrived:"]
        shown = self.messages[-20:]
        if len(self.messages) > len(shown):
            lines.append(f"  ... {len(self.messages) - len(shown)} earlier")
        for topic, payload, retain in shown:
            text = payload[:200].decode("utf-8", errors="replace") + ("..." if len(payload) > 200 else "")
            lines.append(f"  {topic} {'(retained) ' if retain else ''}{text}")
        return "\n".join(lines)

    def close(self) -> None:
        disconnect(self._client)


def connect_client(
    broker: Broker,
    login: BoxLogin | None,
    *,
    client_id: str | None = None,
    protocol: int = mqtt.MQTTv5,
    port: int | None = None,
    tls: bool = True,
    ca_file: Path | None = None,
    cert: tuple[Path, Path] | None = None,
    keepalive: int = 30,
    will: tuple[str, bytes, bool] | None = None,
    on_message: Callable[..., None] | None = None,
    timeout: float = CONNECT_TIMEOUT_S,
) -> tuple[mqtt.Client | None, Any]:
    """Connect one paho client (network loop running) and wait for the CONNACK.

    Returns (client, reason code) when accepted, (None, reason code) when refused, (None, None)
    when the connection closed without a CONNACK, (None, exception) when TCP/TLS failed.
    ``will`` is (topic, payload, retain), sent at QoS 1.
    """
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"test-{uuid.uuid4().hex[:12]}", protocol=protocol, reconnect_on_failure=False)
    if tls:
        client.tls_set(ca_certs=str(ca_file or broker.ca_file), certfile=str(cert[0]) if cert else None, keyfile=str(cert[1]) if cert else None, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    if login is not None:
        client.username_pw_set(login.username, login.password)
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=will[2])
    if on_message is not None:
        client.on_message = on_message
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def on_connect(c: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        outcome.setdefault("connack", reason)
        done.set()

    def on_disconnect(c: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        outcome.setdefault("closed", reason)
        done.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    properties = None
    if protocol == mqtt.MQTTv5:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 0
    try:
        client.connect(broker.host, port or broker.port, keepalive=keepalive, properties=properties)
    except (OSError, ssl.SSLError) as err:
        return None, err
    client.loop_start()
    done.wait(timeout)
    reason = outcome.get("connack")
    if reason is not None and not reason.is_failure:
        return client, reason
    disconnect(client)
    return None, reason


def disconnect(client: mqtt.Client) -> None:
    """DISCONNECT (so no will is sent) and stop the network thread."""
    try:
        client.disconnect()
    finally:
        client.loop_stop()
