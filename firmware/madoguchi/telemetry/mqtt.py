"""The ``[mqtt]`` table applied to a paho client, once for the box (telemetry/link.py) and the admin
tools (fleet/connect.py): the password from its file, TLS (system CAs or ``ca_file``, an optional
client certificate), the protocol order for ``protocol = "auto"`` (MQTT 5, then 3.1.1).

Each caller keeps its own way of connecting (the box reconnects forever in paho's thread; a tool
connects once and says why it could not) and turns :class:`MqttFileError` into its own error.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt_client
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from madoguchi.config import MqttSettings
from madoguchi.errors import MadoguchiError


class MqttFileError(MadoguchiError, OSError):
    """A file ``[mqtt]`` names (password, CA, client certificate or key) cannot be read or loaded."""

    code = "mqtt_file"

    def __init__(self, key: str, path: str, why: str) -> None:
        super().__init__(f"[mqtt] {key} {path}: {why}")
        self.key, self.path, self.why = key, path, why


def read_password(mqtt: MqttSettings) -> str | None:
    """The password from ``password_file`` (None without one): a secret never sits in the config."""
    if not mqtt.password_file:
        return None
    try:
        return Path(mqtt.password_file).read_text(encoding="utf-8").strip()
    except OSError as err:
        raise MqttFileError("password_file", mqtt.password_file, f"cannot read it: {err.strerror or err}") from err


def tls_context(mqtt: MqttSettings) -> ssl.SSLContext:
    """Certificate and host name checked against ``ca_file`` (or the system store); a client certificate if given."""
    for key in ("ca_file", "cert_file", "key_file"):
        path = getattr(mqtt, key)
        if path and not Path(path).is_file():
            raise MqttFileError(key, path, "does not exist; allowed: a PEM file")
    try:
        context = ssl.create_default_context(cafile=mqtt.ca_file or None)
        if mqtt.cert_file:
            context.load_cert_chain(mqtt.cert_file, mqtt.key_file or None)
    except (OSError, ssl.SSLError) as err:
        files = ", ".join(f for f in (mqtt.ca_file, mqtt.cert_file, mqtt.key_file) if f) or "the system CA store"
        raise MqttFileError("ca_file/cert_file/key_file", files, f"cannot load the TLS files: {err}") from err
    return context


def protocols(mqtt: MqttSettings) -> list[MQTTProtocolVersion]:
    """The versions to try in order: ``auto`` is MQTT 5, falling back to 3.1.1 if the broker refuses it."""
    return {"5": [MQTTProtocolVersion.MQTTv5], "3.1.1": [MQTTProtocolVersion.MQTTv311]}.get(mqtt.protocol, [MQTTProtocolVersion.MQTTv5, MQTTProtocolVersion.MQTTv311])


def new_client(mqtt: MqttSettings, client_id: str, protocol: MQTTProtocolVersion, password: str | None, context: ssl.SSLContext | None = None,
               **options: Any) -> mqtt_client.Client:
    """A paho client with the site's TLS and login applied (``options``: paho's own, e.g. manual_ack)."""
    client = mqtt_client.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol, **options)
    if mqtt.tls:
        client.tls_set_context(context or tls_context(mqtt))
    if mqtt.username:
        client.username_pw_set(mqtt.username, password)
    return client
