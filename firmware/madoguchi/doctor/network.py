"""The fleet broker, step by step: DNS, TCP, TLS, login (CONNACK), publish (PUBACK) and subscribe (SUBACK).

The login and what follows go through ``madoguchi.fleet.connect`` (the admin tools' connection,
which waits for the CONNACK and names every failure), with a throwaway client id so the running
service's own session is never kicked off. The probe publishes one schema-valid ``cmd_result``
(name "doctor") on the box's own topic, not retained: a leaf the shipped ACL lets a box write
and that no dashboard keeps. An MQTT 3.1.1 broker never says a publish was denied; only MQTT 5
answers "not authorized" in the PUBACK. Likewise mosquitto 2 grants every subscription and applies
its ACL when delivering, so a refused SUBACK (0x80, or 0x87 from MQTT 5) shows only on brokers that
check at subscribe time; neither can be verified further with the box's own login, which may not
publish commands to itself.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from datetime import UTC, datetime

from madoguchi.config import MqttSettings
from madoguchi.doctor.base import Check, fail, ok, skip, warn

TIMEOUT_S = 5.0
CERT_WARN_DAYS = 30
STEPS = ("broker dns", "broker tcp", "broker tls", "broker login", "broker publish", "broker subscribe")
ACL_FIX = ("the broker's ACL must let this box's login write madoguchi/v1/{site}/{box}/… and read …/cmd/#: with the shipped "
           "fleet/broker/acl.example the username must be exactly \"{site}/{box}\" ([mqtt] site and box_id)")


def broker_checks(mqtt: MqttSettings, timeout_s: float = TIMEOUT_S) -> list[Check]:
    if not mqtt.enabled:
        return [skip("broker", "[mqtt] host is not set: this box reports to no fleet")]
    lines: list[Check] = []

    def rest(reason: str) -> list[Check]:
        return lines + [skip(step, reason) for step in STEPS[len(lines):]]

    where = f"{mqtt.host}:{mqtt.port}"
    try:
        addresses = sorted({info[4][0] for info in socket.getaddrinfo(mqtt.host, mqtt.port, type=socket.SOCK_STREAM)})
    except (socket.gaierror, UnicodeError) as err:
        lines.append(fail("broker dns", f"cannot resolve {mqtt.host!r}: {getattr(err, 'strerror', None) or err}",
                          f"check [mqtt] host and the box's DNS: `getent hosts {mqtt.host}`, /etc/resolv.conf"))
        return rest("the broker's name does not resolve")
    lines.append(ok("broker dns", f"{mqtt.host} -> {', '.join(addresses)}"))
    try:
        sock = socket.create_connection((mqtt.host, mqtt.port), timeout=timeout_s)
    except ConnectionRefusedError:
        lines.append(fail("broker tcp", f"{where}: connection refused (nothing listening)",
                          f"check [mqtt] port (8883 for TLS, 1883 plain) and that the broker runs (`systemctl status mosquitto` on {mqtt.host})"))
        return rest("no TCP connection")
    except OSError as err:
        lines.append(fail("broker tcp", f"{where}: {err.strerror or err}",
                          f"check the network path: a firewall between the box and {mqtt.host} must let TCP {mqtt.port} through"))
        return rest("no TCP connection")
    lines.append(ok("broker tcp", f"{where} accepts connections"))
    with sock:
        lines.append(_tls_check(mqtt, sock, where, timeout_s))
    if lines[-1].status == "fail":
        return rest("no TLS session")
    return _mqtt_checks(mqtt, lines, timeout_s, rest)


def _tls_check(mqtt: MqttSettings, sock: socket.socket, where: str, timeout_s: float) -> Check:
    from madoguchi.telemetry.mqtt import MqttFileError, tls_context

    if not mqtt.tls:
        return warn("broker tls", "[mqtt] tls = false: the login and the fleet's data cross the network in clear",
                    "set [mqtt] tls = true and port = 8883 with the site CA in [mqtt] ca_file")
    try:
        context = tls_context(mqtt)  # the very context the box's and the tools' connections use
    except MqttFileError as err:
        return fail("broker tls", f"{where}: {err}", "check [mqtt] ca_file, cert_file and key_file: readable PEM files")
    sock.settimeout(timeout_s)
    try:
        with context.wrap_socket(sock, server_hostname=mqtt.host) as tls:
            cert = tls.getpeercert() or {}
            version = tls.version()
            try:
                tls.unwrap()  # close_notify: no "unexpected eof" in the broker's log
            except (OSError, ValueError):
                pass
    except ssl.SSLCertVerificationError as err:
        return fail("broker tls", f"{where}: the broker's certificate is not accepted ({err.verify_message or err.reason})",
                    f"set [mqtt] ca_file to the site CA that signed it ({mqtt.ca_file or 'now: the system CA store'}), "
                    f"check [mqtt] host matches the certificate's name, and that the clock is right")
    except ssl.SSLError as err:
        plain = "WRONG_VERSION" in str(err).upper() or "RECORD_LAYER" in str(err).upper()
        return fail("broker tls", f"{where}: TLS failed ({err.reason or err})",
                    "this looks like a plain MQTT port: use the TLS port (8883) or set [mqtt] tls = false" if plain else
                    "check the broker's TLS listener and, if it requires one, the client certificate in [mqtt] cert_file/key_file")
    except OSError as err:
        return fail("broker tls", f"{where}: the handshake did not finish ({err.strerror or err})",
                    "this looks like a plain MQTT port: use the TLS port (8883) or set [mqtt] tls = false")
    expires = cert.get("notAfter")
    if expires:
        left = (datetime.fromtimestamp(ssl.cert_time_to_seconds(expires), UTC) - datetime.now(UTC)).days
        if left < CERT_WARN_DAYS:
            return warn("broker tls", f"{version}, certificate valid but expires in {left} days ({expires})", "renew the broker's certificate")
        return ok("broker tls", f"{version}, certificate trusted, {left} days left")
    return ok("broker tls", f"{version}, certificate trusted")


def _mqtt_checks(mqtt: MqttSettings, lines: list[Check], timeout_s: float, rest) -> list[Check]:
    from madoguchi.fleet.connect import close, connect, subscribe, throwaway_client_id
    from madoguchi.fleet.errors import FleetConnectError, FleetInputError, FleetRefusedError, FleetTlsError
    from madoguchi.telemetry.topics import Topics

    topics = Topics.for_settings(mqtt)
    user = f"user {mqtt.username!r}" if mqtt.username else "no username"
    try:
        client = connect(mqtt, throwaway_client_id("doctor"))
    except FleetRefusedError as err:
        lines.append(fail("broker login", str(err), "the username ([mqtt] username) and the password in [mqtt] password_file must match the "
                          "broker's password file (`mosquitto_passwd` on the broker), and the login must not be disabled"))
        return rest("not logged in")
    except (FleetInputError, FleetTlsError, FleetConnectError) as err:
        lines.append(fail("broker login", str(err), "check [mqtt] password_file is readable, and the broker lines above"))
        return rest("not logged in")
    try:
        lines.append(ok("broker login", f"accepted with {user} (MQTT {'5' if client.protocol == 5 else '3.1.1'})"))
        lines.append(_publish(client, topics, mqtt, timeout_s))
        try:
            subscribe(client, [topics.commands], timeout_s)
        except FleetRefusedError:
            lines.append(fail("broker subscribe", f"the broker refused a subscription to {topics.commands} (SUBACK 0x80)",
                              ACL_FIX.format(site=topics.site, box=topics.box)))
        except FleetConnectError as err:
            lines.append(fail("broker subscribe", str(err), "check the broker's log for why it did not answer"))
        else:
            lines.append(ok("broker subscribe", f"{topics.commands} granted QoS 1 (mosquitto 2 grants every subscription and "
                                                   "filters delivery by its ACL: the publish line is the stricter test)"))
    finally:
        close(client)
    return lines


def _publish(client, topics, mqtt: MqttSettings, timeout_s: float) -> Check:
    answered = threading.Event()
    acks: dict[int, int] = {}

    def on_publish(c, userdata, mid, reason=None, properties=None) -> None:
        acks[mid] = getattr(reason, "value", 0) if reason is not None else 0
        answered.set()

    client.on_publish = on_publish
    payload = {"id": None, "name": "doctor", "ok": True, "ts": round(time.time(), 3), "result": {"probe": "madoguchi doctor: may this box publish?"}}
    info = client.publish(topics.cmd_result, json.dumps(payload).encode(), qos=1, retain=False)
    deadline = time.monotonic() + timeout_s
    while info.mid not in acks and time.monotonic() < deadline:
        answered.wait(0.1)
        answered.clear()
    code = acks.get(info.mid)
    if code is None:
        return fail("broker publish", f"no PUBACK for {topics.cmd_result} within {timeout_s:g} s", "check the broker's log (it may drop this box's messages)")
    if code >= 0x80:
        return fail("broker publish", f"the broker denied a publish to {topics.cmd_result} (PUBACK reason {code:#04x}: not authorized)",
                    ACL_FIX.format(site=topics.site, box=topics.box))
    v311 = " (MQTT 3.1.1: a broker would not say if it dropped it)" if client.protocol != 5 else ""
    return ok("broker publish", f"{topics.cmd_result}: PUBACK received{v311}")
