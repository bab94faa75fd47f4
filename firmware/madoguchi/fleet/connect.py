"""One broker connection for the admin tools, from the same ``[mqtt]`` table the boxes use
(password, TLS and protocol order applied by telemetry/mqtt.py, as for the box).

The connection is established (CONNACK received) before ``connect`` returns, so every failure
becomes one ``FleetConnectError`` line naming host:port and what failed. Messages are
acknowledged by the caller (``manual_ack``) and land in a queue from the first packet on:
a persistent session's queued messages arrive right after CONNACK, before anyone subscribes,
and must neither be dropped nor acknowledged before they are stored.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import ssl
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt_client
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from madoguchi.config import MqttSettings
from madoguchi.fleet.errors import FleetConnectError, FleetInputError, FleetRefusedError, FleetTlsError
from madoguchi.telemetry.mqtt import MqttFileError, new_client, protocols, read_password, tls_context

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
SESSION_EXPIRY_S = 30 * 86400  # how long the broker keeps a persistent session (and queues) for an absent client
_UNSUPPORTED_PROTOCOL = 132  # MQTT 5 reason code; paho maps a 3.1.1 broker's "refused: protocol version" to it


class _Inbox(queue.Queue):
    """Every message received, in order; the consumer acknowledges each with ``ack``."""


def inbox(client: mqtt_client.Client) -> queue.Queue[mqtt_client.MQTTMessage]:
    """The queue ``connect`` set up for ``client``'s incoming messages."""
    box = client.user_data_get()
    if not isinstance(box, _Inbox):
        raise TypeError("client was not made by madoguchi.fleet.connect.connect")
    return box


def ack(client: mqtt_client.Client, message: mqtt_client.MQTTMessage) -> None:
    """Acknowledge a QoS 1 message once it has been handled (stored); until then the broker may resend it."""
    if message.qos > 0:
        client.ack(message.mid, message.qos)


def session_client_id(kind: str, mqtt: MqttSettings) -> str:
    """A fixed client id for a persistent session: the same on every run so the broker finds its queue."""
    return f"madoguchi-{kind}-{mqtt.username or 'admin'}"[:64]


def throwaway_client_id(kind: str) -> str:
    """A unique client id for a short clean session (status): never collides with a running tool."""
    return f"madoguchi-{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _password(mqtt: MqttSettings) -> str | None:
    try:
        return read_password(mqtt)
    except MqttFileError as err:
        raise FleetInputError(str(err)) from err


def _tls_context(mqtt: MqttSettings, where: str) -> ssl.SSLContext:
    try:
        return tls_context(mqtt)
    except MqttFileError as err:
        raise FleetTlsError(f"MQTT broker {where}: {err}") from err


def _attempt(mqtt: MqttSettings, client_id: str, clean: bool, protocol: MQTTProtocolVersion, password: str | None) -> tuple[mqtt_client.Client | None, Any]:
    """Connect once; (client, None) on success, (None, why) when the broker answered or hung up without CONNACK."""
    where = f"{mqtt.host}:{mqtt.port}"
    v5 = protocol == MQTTProtocolVersion.MQTTv5
    client = new_client(mqtt, client_id, protocol, password, _tls_context(mqtt, where) if mqtt.tls else None,
                        clean_session=None if v5 else clean, userdata=_Inbox(), manual_ack=True, reconnect_on_failure=True)
    client.connect_timeout = CONNECT_TIMEOUT_S
    client.reconnect_delay_set(1, 60)
    client.on_message = lambda c, box, message: box.put(message)
    outcome: dict[str, Any] = {}
    client.on_connect = lambda c, u, flags, reason, props: outcome.setdefault("connack", reason)
    client.on_disconnect = lambda c, u, flags, reason, props: outcome.setdefault("closed", reason)
    properties = None
    if v5 and not clean:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
    try:
        client.connect(mqtt.host, mqtt.port, keepalive=mqtt.keepalive_s, clean_start=clean if v5 else mqtt_client.MQTT_CLEAN_START_FIRST_ONLY, properties=properties)
    except ssl.SSLCertVerificationError as err:
        raise FleetTlsError(
            f"MQTT broker {where}: TLS failure: server certificate not accepted ({err.verify_message or err.reason}); check [mqtt] ca_file ({mqtt.ca_file or 'system CA store'}) and host"
        ) from err
    except ssl.SSLError as err:
        hint = "; is this a plain (non-TLS) port? set [mqtt] tls = false or use the TLS port" if "WRONG_VERSION" in str(err).upper() else ""
        raise FleetTlsError(f"MQTT broker {where}: TLS failure: {err.reason or err}{hint}") from err
    except ConnectionRefusedError as err:
        raise FleetConnectError(f"MQTT broker {where}: nothing is listening (connection refused); check [mqtt] host and port") from err
    except socket.gaierror as err:
        raise FleetConnectError(f"MQTT broker {where}: cannot resolve host {mqtt.host!r}: {err.strerror}") from err
    except TimeoutError as err:
        raise FleetConnectError(f"MQTT broker {where}: no answer within {CONNECT_TIMEOUT_S:g} s") from err
    except OSError as err:
        raise FleetConnectError(f"MQTT broker {where}: cannot connect: {err.strerror or err}") from err
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while not outcome and time.monotonic() < deadline:
        client.loop(timeout=0.1)
    reason = outcome.get("connack")
    if reason is not None and not reason.is_failure:
        return client, None
    client.disconnect()
    client.loop(timeout=0.1)  # sends DISCONNECT and closes the socket
    if not outcome:
        raise FleetConnectError(f"MQTT broker {where}: connected but no CONNACK within {CONNECT_TIMEOUT_S:g} s")
    return None, reason  # None: closed before answering


def connect(mqtt: MqttSettings, client_id: str, clean: bool = True) -> mqtt_client.Client:
    """A connected client with its network loop running; ``inbox(client)`` holds what arrives.

    ``clean=False`` asks for a persistent session (MQTT 5 session expiry, 3.1.1 clean_session
    false): with a fixed ``client_id`` the broker keeps the subscriptions and queues QoS 1
    messages while the client is away. Protocol "auto" tries MQTT 5 and falls back to 3.1.1
    if the broker refuses 5. Raises ``FleetConnectError`` (or a subclass) naming host:port.
    """
    if not mqtt.host:
        raise FleetInputError("[mqtt] host is empty: the fleet tools need the broker's address")
    password = _password(mqtt)
    where = f"{mqtt.host}:{mqtt.port}"
    versions = protocols(mqtt)
    for n, protocol in enumerate(versions):
        client, reason = _attempt(mqtt, client_id, clean, protocol, password)
        if client is not None:
            log.info("connected to %s as %s (MQTT %s, %s session)", where, client_id, "5" if protocol == MQTTProtocolVersion.MQTTv5 else "3.1.1", "clean" if clean else "persistent")
            client.on_connect = _on_reconnect
            client.on_disconnect = _on_disconnect
            client.loop_start()
            return client
        more = n + 1 < len(versions)
        if more and (reason is None or reason.value == _UNSUPPORTED_PROTOCOL):
            log.info("%s refused MQTT 5 (%s); trying 3.1.1", where, reason or "closed the connection")
            continue
        if reason is None:
            raise FleetConnectError(f"MQTT broker {where}: closed the connection without answering; a TLS port with [mqtt] tls = false, or the broker dropped us")
        user = f" as user {mqtt.username!r}" if mqtt.username else " without a username"
        raise FleetRefusedError(f"MQTT broker {where} refused the connection{user}: {reason}; check [mqtt] username and password_file")
    raise AssertionError("unreachable")


def _on_reconnect(client: mqtt_client.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
    if reason.is_failure:
        log.warning("reconnect refused: %s", reason)
    else:
        log.info("reconnected (session present: %s)", flags.session_present)


def _on_disconnect(client: mqtt_client.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
    if reason.is_failure:
        log.warning("connection lost (%s); reconnecting", reason)


def for_site(topic_filter: str, site: str | None) -> str:
    """A FLEET_* filter narrowed to one site (its first ``+`` replaced), or unchanged for None."""
    return topic_filter if site is None else topic_filter.replace("/+/", f"/{site}/", 1)


def subscribe(client: mqtt_client.Client, filters: list[str], timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Subscribe with QoS 1 and wait for the SUBACK; ``FleetRefusedError`` if the broker refuses a filter."""
    answered = threading.Event()
    codes: list[Any] = []

    def on_subscribe(c: Any, u: Any, mid: int, reasons: list[Any], props: Any) -> None:
        codes[:] = reasons  # one subscription at a time: the SUBACK may come before subscribe() returns its mid
        answered.set()

    client.on_subscribe = on_subscribe
    result, _mid = client.subscribe([(f, 1) for f in filters])
    if result != mqtt_client.MQTT_ERR_SUCCESS:
        raise FleetConnectError(f"cannot subscribe to {', '.join(filters)}: {mqtt_client.error_string(result)}")
    if not answered.wait(timeout_s):
        raise FleetConnectError(f"the broker did not answer the subscription to {', '.join(filters)} within {timeout_s:g} s")
    refused = [f"{f} ({code})" for f, code in zip(filters, codes) if code.is_failure]
    if refused:
        raise FleetRefusedError(f"the broker refused the subscription to {', '.join(refused)}; the admin login needs read access to madoguchi/v1/#")


def close(client: mqtt_client.Client) -> None:
    """Disconnect cleanly (a persistent session stays on the broker) and stop the network loop."""
    client.disconnect()
    client.loop_stop()
