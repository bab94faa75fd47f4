"""The site broker keeps its promises: each box speaks only for itself and hears only its own
commands, nobody gets in without TLS and a password, retained status survives a restart, and a
box that vanishes is reported offline by its will. Runs a real mosquitto (tests/mqtt_broker.py)
with the shipped ACL, and starts the shipped mosquitto.conf.example once to prove it loads."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import trustme

from madoguchi.telemetry.topics import ROOT as TOPIC_ROOT
from madoguchi.telemetry.topics import Topics
from tests.mqtt_broker import ACL_EXAMPLE, BoxLogin, Broker, connect_client, disconnect, free_port

EXAMPLES = ACL_EXAMPLE.parent
SITE, OTHER_SITE = "city-hall", "ward-office"
FLEET = f"{TOPIC_ROOT}/#"


def _connected(broker: Broker, login: BoxLogin, **kwargs) -> mqtt.Client:
    client, reason = connect_client(broker, login, **kwargs)
    assert client is not None, f"{login.username} could not connect: {reason}"
    return client


def _publish_all(client: mqtt.Client, messages: list[tuple[str, bytes, bool]]) -> list:
    """Publish at QoS 1 in order; the PUBACK reason codes (MQTT 5: 'Not authorized' on denial)."""
    acks: dict[int, object] = {}
    client.on_publish = lambda c, userdata, mid, reason, properties: acks.__setitem__(mid, reason)
    infos = [client.publish(topic, payload, qos=1, retain=retain) for topic, payload, retain in messages]
    for info in infos:
        info.wait_for_publish(5)
    return [acks.get(info.mid) for info in infos]


def _topics(messages: list[tuple[str, bytes, bool]]) -> list[str]:
    return [topic for topic, _, _ in messages]


def test_box_publishes_under_its_prefix_and_hears_its_commands(broker: Broker) -> None:
    box = Topics(SITE, "own-01")
    login = broker.add_box(box.site, box.box)
    assert login.username == f"{SITE}/own-01"
    fleet = broker.subscriber(f"{box.prefix}/#")
    inbox = broker.subscriber(box.commands, login=login)
    client = _connected(broker, login)
    try:
        sent = [(box.status, b'{"state":"online"}', True), (box.health, b"{}", True), (box.usage, b"{}", False), (box.event, b"{}", False), (box.cmd_result, b"{}", False)]
        acks = _publish_all(client, sent)
        assert all(not reason.is_failure for reason in acks), acks
        fleet.wait_for(lambda msgs: _topics(msgs) == [t for t, _, _ in sent], timeout=5)
        assert [retain for _, _, retain in fleet.messages] == [True, True, False, False, False]  # retain-as-published

        admin = _connected(broker, broker.admin())
        try:
            _publish_all(admin, [(f"{box.prefix}/cmd/ping", b'{"id":"c1"}', False)])
        finally:
            disconnect(admin)
        inbox.wait_for(lambda msgs: _topics(msgs) == [f"{box.prefix}/cmd/ping"], timeout=5)
        assert box.command_name(inbox.messages[0][0]) == "ping"
    finally:
        disconnect(client)
        fleet.close()
        inbox.close()


def test_box_cannot_speak_for_another_box_or_site(broker: Broker) -> None:
    me, neighbour, elsewhere = Topics(SITE, "mallory-01"), Topics(SITE, "victim-01"), Topics(OTHER_SITE, "mallory-01")
    login = broker.add_box(me.site, me.box)
    broker.add_box(neighbour.site, neighbour.box)
    fleet = broker.subscriber(FLEET)
    neighbour_inbox = broker.subscriber(neighbour.commands, login=broker.add_box(neighbour.site, neighbour.box))
    own_inbox = broker.subscriber(me.commands, login=login)
    client = _connected(broker, login)
    try:
        forged = [
            (neighbour.status, b'{"state":"offline"}', True),  # another box, same site
            (neighbour.usage, b"{}", False),
            (elsewhere.status, b'{"state":"online"}', True),  # same box name, another site
            (elsewhere.usage, b"{}", False),
            (f"{neighbour.prefix}/cmd/reboot", b'{"id":"x"}', False),  # commanding a neighbour
            (f"{me.prefix}/cmd/reboot", b'{"id":"x"}', False),  # or itself
            (f"{me.prefix}/status/extra", b"{}", False),  # below its own leaves
            (f"{TOPIC_ROOT}/{SITE}/status", b"{}", False),  # above them
        ]
        sentinel = (me.health, b'{"sentinel":true}', False)
        acks = _publish_all(client, [*forged, sentinel])
        assert [str(reason) for reason in acks[:-1]] == ["Not authorized"] * len(forged)
        assert not acks[-1].is_failure
        # Messages of one client arrive in order: once the sentinel is here, the forgeries would be too.
        fleet.wait_for(lambda msgs: me.health in _topics(msgs), timeout=5)
        # (the fleet subscription also replays other tests' retained status: look for ours only)
        assert not {topic for topic, _, _ in forged} & set(_topics(fleet.messages)), fleet.messages
        assert neighbour_inbox.messages == [] and own_inbox.messages == []
    finally:
        disconnect(client)
        fleet.close()
        neighbour_inbox.close()
        own_inbox.close()


def test_box_cannot_read_another_boxs_commands(broker: Broker) -> None:
    me, neighbour, elsewhere = Topics(SITE, "snoop-01"), Topics(SITE, "target-01"), Topics(OTHER_SITE, "snoop-01")
    login = broker.add_box(me.site, me.box)
    # mosquitto 2.0 grants any subscription and filters delivery through the ACL, so what
    # matters is what arrives: a box listening on its neighbour's commands or on everything
    # hears nothing but its own commands.
    targeted = broker.subscriber(neighbour.commands, login=login)
    everything = broker.subscriber("#", login=login)
    other_site = broker.subscriber(elsewhere.commands, login=login)
    admin = _connected(broker, broker.admin())
    try:
        _publish_all(admin, [(f"{neighbour.prefix}/cmd/set_config", b'{"id":"1"}', False), (f"{elsewhere.prefix}/cmd/set_config", b'{"id":"2"}', False),
                             (f"{me.prefix}/cmd/ping", b'{"id":"3"}', False)])
        everything.wait_for(lambda msgs: f"{me.prefix}/cmd/ping" in _topics(msgs), timeout=5)
        assert _topics(everything.messages) == [f"{me.prefix}/cmd/ping"]
        assert targeted.messages == [] and other_site.messages == []
    finally:
        disconnect(admin)
        for collector in (targeted, everything, other_site):
            collector.close()


def test_dashboard_reads_but_cannot_command_and_admin_cannot_forge_status(broker: Broker) -> None:
    box = Topics(SITE, "watched-01")
    login = broker.add_box(box.site, box.box)
    board = broker.subscriber(f"{TOPIC_ROOT}/+/+/usage", login=broker.dashboard())
    inbox = broker.subscriber(box.commands, login=login)
    fleet = broker.subscriber(f"{box.prefix}/#")
    client, dashboard, admin = _connected(broker, login), _connected(broker, broker.dashboard()), _connected(broker, broker.admin())
    try:
        assert [str(r) for r in _publish_all(dashboard, [(f"{box.prefix}/cmd/reboot", b'{"id":"d"}', False)])] == ["Not authorized"]
        assert [str(r) for r in _publish_all(admin, [(box.status, b'{"state":"offline"}', True)])] == ["Not authorized"]
        _publish_all(client, [(box.usage, b'{"kind":"utterance"}', False)])
        board.wait_for(lambda msgs: _topics(msgs) == [box.usage], timeout=5)
        fleet.wait_for(lambda msgs: box.usage in _topics(msgs), timeout=5)
        assert _topics(fleet.messages) == [box.usage] and inbox.messages == []
    finally:
        for c in (client, dashboard, admin):
            disconnect(c)
        for collector in (board, inbox, fleet):
            collector.close()


@pytest.mark.parametrize("protocol", [mqtt.MQTTv5, mqtt.MQTTv311], ids=["mqtt5", "mqtt3.1.1"])
def test_both_protocol_versions_connect_and_bad_logins_are_refused(broker: Broker, protocol: int, tmp_path: Path) -> None:
    login = broker.add_box(SITE, "proto-01")
    client = _connected(broker, login, protocol=protocol)
    disconnect(client)

    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password", encoding="utf-8")
    for who in (BoxLogin(login.username, wrong), BoxLogin(f"{SITE}/nobody", login.password_file), BoxLogin("admin", login.password_file)):
        client, reason = connect_client(broker, who, protocol=protocol)
        assert client is None and reason is not None and str(reason) == "Not authorized", (who.username, reason)
    client, reason = connect_client(broker, None, protocol=protocol)  # anonymous
    assert client is None and str(reason) == "Not authorized"


def test_plain_tcp_is_refused(broker: Broker) -> None:
    client, reason = connect_client(broker, broker.admin(), tls=False, timeout=3)
    assert client is None and reason is None, f"a plain-TCP CONNECT was answered: {reason}"
    # and at the byte level: the broker answers a plain MQTT CONNECT with a TLS alert or nothing, never a CONNACK
    connect_packet = bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 30, 0, 0])
    with socket.create_connection((broker.host, broker.port), timeout=3) as sock:
        sock.sendall(connect_packet)
        try:
            answer = sock.recv(16)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    assert not answer.startswith(b"\x20"), f"got a CONNACK over plain TCP: {answer!r}"


def test_a_box_refuses_a_broker_its_ca_did_not_sign(broker: Broker, tmp_path: Path) -> None:
    """A rogue broker (or a man in the middle) cannot collect a box's password: TLS fails first."""
    rogue_ca = tmp_path / "rogue-ca.crt"
    trustme.CA().cert_pem.write_to_path(str(rogue_ca))
    client, reason = connect_client(broker, broker.add_box(SITE, "careful-01"), ca_file=rogue_ca)
    assert client is None and isinstance(reason, ssl.SSLCertVerificationError), reason


def test_client_certificates_from_the_site_ca_only(broker: Broker, tmp_path: Path) -> None:
    box = Topics(SITE, "cert-01")
    broker.add_box(box.site, box.box)  # the username exists; no password is sent on this listener
    fleet = broker.subscriber(f"{box.prefix}/#")
    client = _connected(broker, None, port=broker.mtls_port, cert=broker.client_cert(f"{box.site}/{box.box}"))
    try:
        acks = _publish_all(client, [(f"{TOPIC_ROOT}/{SITE}/someone-else/status", b"{}", True), (box.health, b"{}", True)])
        assert [str(r) for r in acks] == ["Not authorized", "Success"]  # the CN is the username: same ACL as a password login
        fleet.wait_for(lambda msgs: _topics(msgs) == [box.health], timeout=5)
    finally:
        disconnect(client)
        fleet.close()

    foreign = trustme.CA().issue_cert("cert-01.clients.invalid", common_name=f"{box.site}/{box.box}")
    cert, key = tmp_path / "foreign.crt", tmp_path / "foreign.key"
    foreign.cert_chain_pems[0].write_to_path(str(cert))
    foreign.private_key_pem.write_to_path(str(key))
    for attempt in ({"cert": (cert, key)}, {}):  # signed by another CA; no certificate at all
        client, reason = connect_client(broker, None, port=broker.mtls_port, timeout=3, **attempt)
        assert client is None, f"accepted {attempt or 'no certificate'} on the client-certificate listener: {reason}"


def test_retained_status_survives_a_restart(broker: Broker) -> None:
    box = Topics(SITE, "restart-01")
    login = broker.add_box(box.site, box.box)
    client = _connected(broker, login)
    status = json.dumps({"state": "online", "version": "test"}).encode()
    try:
        _publish_all(client, [(box.status, status, True)])
    finally:
        disconnect(client)
    broker.restart()
    watcher = broker.subscriber(box.status)
    try:
        watcher.wait_for(lambda msgs: len(msgs) >= 1, timeout=5)
        assert watcher.messages == [(box.status, status, True)]
    finally:
        watcher.close()


_WILL_BOX = r"""
import ssl, sys, threading, time
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
host, port, ca, user, password_file, prefix, keepalive = sys.argv[1:8]
client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="will-" + prefix.replace("/", "-"), protocol=mqtt.MQTTv5)
client.tls_set(ca_certs=ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
client.username_pw_set(user, open(password_file, encoding="utf-8").read())
client.will_set(prefix + "/status", b'{"state":"offline","reason":"connection_lost"}', qos=1, retain=True)
up = threading.Event()
client.on_connect = lambda c, u, f, reason, p: reason.is_failure or up.set()
client.connect(host, int(port), keepalive=int(keepalive))
client.loop_start()
if not up.wait(5):
    sys.exit("no CONNACK")
client.publish(prefix + "/status", b'{"state":"online"}', qos=1, retain=True).wait_for_publish(5)
print("online", flush=True)
while True:
    time.sleep(60)
"""
KEEPALIVE_S = 5
# mosquitto 2.0 (src/keepalive.c) drops a silent client once more than int(1.5 x keep-alive) whole
# seconds have passed since its last packet, but runs that check only every 6 s (1-s clock):
# 8..14 s after the last packet for keep-alive 5 (46..52 s for the box's default 30).
SILENT_LIMIT_S = int(1.5 * KEEPALIVE_S) + 1 + 6 + 2


@pytest.mark.parametrize("how", ["kill-9", "frozen"])
def test_a_vanished_box_is_reported_offline_by_its_will(broker: Broker, how: str) -> None:
    """kill -9: the socket closes without DISCONNECT, the will goes out at once. frozen (SIGSTOP, like
    a pulled network cable): the socket stays open and silent, the broker gives up after 1.5 x keep-alive."""
    box = Topics(SITE, f"will-{how}")
    login = broker.add_box(box.site, box.box)
    fleet = broker.subscriber(box.status)
    proc = subprocess.Popen([sys.executable, "-c", _WILL_BOX, broker.host, str(broker.port), str(broker.ca_file), login.username, str(login.password_file), box.prefix, str(KEEPALIVE_S)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        line = proc.stdout.readline() if proc.stdout else b""
        assert line.strip() == b"online", f"the box did not come up: {line!r} {proc.stderr.read() if proc.poll() is not None and proc.stderr else ''}"
        fleet.wait_for(lambda msgs: any(b'"online"' in payload for _, payload, _ in msgs), timeout=5)
        gone = time.monotonic()
        proc.send_signal(signal.SIGKILL if how == "kill-9" else signal.SIGSTOP)
        limit = KEEPALIVE_S if how == "kill-9" else SILENT_LIMIT_S
        fleet.wait_for(lambda msgs: any(b"connection_lost" in payload for _, payload, _ in msgs), timeout=limit)
        took = time.monotonic() - gone
        assert how == "kill-9" or took >= 1.5 * KEEPALIVE_S - 1, f"a frozen box was declared gone after {took:.1f} s, before its keep-alive ran out"
        topic, payload, retained = fleet.messages[-1]
        assert topic == box.status and retained and json.loads(payload) == {"state": "offline", "reason": "connection_lost"}
    finally:
        proc.kill()
        proc.wait()
        fleet.close()
    # the will was retained: a dashboard that starts now still sees the box offline
    late = broker.subscriber(box.status)
    try:
        late.wait_for(lambda msgs: len(msgs) >= 1, timeout=5)
        assert b"connection_lost" in late.messages[0][1]
    finally:
        late.close()


def test_the_shipped_example_config_starts(broker: Broker, tmp_path: Path) -> None:
    """mosquitto.conf.example with only its paths, port and user replaced: mosquitto accepts every
    line (it exits on an unknown or duplicate option) and a box logs in over TLS with the shipped ACL."""
    port = free_port()
    replace = {
        "cafile": str(broker.ca_file), "certfile": str(broker.server_cert_file), "keyfile": str(broker.server_key_file),
        "password_file": str(broker.passwd_file), "acl_file": str(ACL_EXAMPLE), "persistence_location": str(tmp_path),
        "log_dest": f"file {tmp_path / 'mosquitto.log'}", "pid_file": str(tmp_path / "mosquitto.pid"),
        "user": "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody"),
    }
    lines = []
    for line in (EXAMPLES / "mosquitto.conf.example").read_text(encoding="utf-8").splitlines():
        key = line.split(" ", 1)[0]
        if key == "listener":
            lines.append(f"listener {port} 127.0.0.1")
        elif key in replace:
            lines.append(f"{key} {replace[key]}")
        else:
            lines.append(line)
    conf = tmp_path / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
    box = Topics(SITE, "example-01")
    login = broker.add_box(box.site, box.box)  # into the shared password file, which the example broker reads at start
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, f"mosquitto refused the example config:\n{proc.stdout.read().decode() if proc.stdout else ''}"
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as raw, ssl.create_default_context(cafile=str(broker.ca_file)).wrap_socket(raw, server_hostname="127.0.0.1"):
                    break
            except OSError:
                assert time.monotonic() < deadline, "mosquitto did not accept TLS on the example config within 10 s"
                time.sleep(0.05)
        client, reason = connect_client(broker, login, port=port)
        assert client is not None, reason
        try:
            acks = _publish_all(client, [(box.health, b"{}", True), (f"{TOPIC_ROOT}/{SITE}/other/health", b"{}", True)])
            assert not acks[0].is_failure and str(acks[1]) == "Not authorized", acks
        finally:
            disconnect(client)
    finally:
        proc.terminate()
        proc.wait(5)
