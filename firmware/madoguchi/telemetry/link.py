"""The box's MQTT connection (paho-mqtt 2): TLS, login, will, reconnect with back-off, MQTT 5 → 3.1.1.

paho runs its own network thread (``loop_start``), reconnecting by itself with a growing delay
(1 s up to ``[mqtt] reconnect_max_s``) whether the broker was down at boot or went away later. This class turns
its callbacks into what the rest of the box needs: a ``connected`` event, a way to publish and
wait for the broker's PUBACK, and incoming commands on a queue.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from madoguchi.config import MqttSettings
from madoguchi.errors import ConfigError, ConfigProblem
from madoguchi.telemetry.mqtt import MqttFileError, new_client, protocols, read_password, tls_context
from madoguchi.telemetry.topics import Topics

log = logging.getLogger(__name__)

RECONNECT_MIN_S = 1
_PROTOCOL_REFUSED = {1, 0x84}  # 3.1.1 "unacceptable protocol version", MQTT 5 "unsupported protocol version"


class Link:
    """One MQTT connection for one box; thread-safe; callbacks arrive on paho's thread."""

    def __init__(self, mqtt_settings: MqttSettings, topics: Topics, will: bytes, on_connected: Callable[[], None], config_source: str = "config") -> None:
        self.settings = mqtt_settings
        self.topics = topics
        self.connected = threading.Event()
        self.commands: queue.Queue[tuple[str, bytes]] = queue.Queue(maxsize=100)
        self._will = will
        self._on_connected = on_connected
        self._acks: dict[int, int] = {}  # mid -> reason code, filled by on_publish
        self._ack_ready = threading.Condition()
        try:  # a file that cannot be read is the config's problem, said at start
            self._password = read_password(mqtt_settings)
            self._tls = tls_context(mqtt_settings) if mqtt_settings.tls else None
        except MqttFileError as err:
            raise ConfigError([ConfigProblem(config_source, f"[mqtt] {err.key}", f"{err.path}: {err.why}")]) from err
        self._protocol = protocols(mqtt_settings)[0]
        self._client = self._new_client()

    def _new_client(self) -> mqtt.Client:
        s = self.settings
        client = new_client(s, f"madoguchi-{self.topics.site}-{self.topics.box}", self._protocol, self._password, self._tls)
        client.will_set(self.topics.status, self._will, qos=1, retain=True)
        client.reconnect_delay_set(RECONNECT_MIN_S, s.reconnect_max_s)
        client.max_queued_messages_set(1000)
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_publish = self._published
        client.on_message = self._message
        return client

    def start(self) -> None:
        self._client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s)
        self._client.loop_start()

    def stop(self) -> None:
        self.connected.clear()  # first: a disconnect we asked for is not "lost the broker"
        self._client.disconnect()
        self._client.loop_stop()

    # --- paho callbacks (paho's network thread) ---
    def _connected(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any = None) -> None:
        if reason.is_failure:
            log.warning("broker %s:%s refused the connection: %s", self.settings.host, self.settings.port, reason)
            if reason.value in _PROTOCOL_REFUSED and self.settings.protocol == "auto" and self._protocol == mqtt.MQTTv5:
                threading.Thread(target=self._fall_back, name="mqtt-fallback", daemon=True).start()
            return
        log.info("connected to %s:%s (MQTT %s)", self.settings.host, self.settings.port, "5" if self._protocol == mqtt.MQTTv5 else "3.1.1")
        client.subscribe(self.topics.commands, qos=1)
        self.connected.set()
        self._on_connected()

    def _fall_back(self) -> None:
        """The broker speaks only 3.1.1: start over with that (off paho's thread, which we stop)."""
        log.info("broker does not speak MQTT 5; falling back to 3.1.1")
        self._client.loop_stop()
        self._protocol = protocols(self.settings)[-1]
        self._client = self._new_client()
        self.start()

    def _disconnected(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any = None) -> None:
        if self.connected.is_set():
            log.warning("lost the broker (%s); reconnecting with back-off", reason)
        self.connected.clear()
        with self._ack_ready:
            self._ack_ready.notify_all()  # waiters give up and the message stays spooled

    def _published(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any = None, properties: Any = None) -> None:
        # Not holding our lock while publishing matters: paho calls this with its own lock held.
        with self._ack_ready:
            self._acks[mid] = getattr(reason, "value", 0) if reason is not None else 0
            while len(self._acks) > 256:  # acks of status/health nobody waits for
                del self._acks[next(iter(self._acks))]
            self._ack_ready.notify_all()

    def _message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            self.commands.put_nowait((message.topic, bytes(message.payload)))
        except queue.Full:
            log.warning("command queue full; dropped a command on %s", message.topic)

    # --- used by the box ---
    def publish(self, topic: str, payload: bytes, retain: bool = False) -> int | None:
        """Publish at QoS 1 without waiting; the message id, or None when not connected."""
        if not self.connected.is_set():
            return None
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        return info.mid if info.rc == mqtt.MQTT_ERR_SUCCESS else None

    def wait_ack(self, mid: int, timeout_s: float) -> int | None:
        """The PUBACK's reason code (0 = accepted), or None if the link dropped or time ran out."""
        with self._ack_ready:
            arrived = self._ack_ready.wait_for(lambda: mid in self._acks or not self.connected.is_set(), timeout_s)
            return self._acks.pop(mid, None) if arrived else None
