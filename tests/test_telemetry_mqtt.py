"""Telemetry against a real mosquitto (TLS, passwords, ACL): nothing counted is lost.

Every message that reaches the fleet side in these tests is checked against its JSON Schema,
and no usage payload may carry words while transcript sharing is off.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from madoguchi.telemetry.schemas import problems
from madoguchi.telemetry.topics import split_topic

ROOT = Path(__file__).resolve().parents[1]


def box_config(broker, tmp_path: Path, site: str, box: str, share: bool = False) -> Path:
    login = broker.add_box(site, box)
    mqtt_settings = broker.mqtt_settings(login, site, box, spool_path=tmp_path / "spool.sqlite3", keepalive_s=5, reconnect_max_s=2, health_interval_s=5, share_transcripts=share)
    lines = [f'[paths]\nstate_dir = "{tmp_path / "state"}"\n\n[mqtt]']
    for key, value in mqtt_settings.__dict__.items():
        lines.append(f"{key} = {json.dumps(value)}")
    config = tmp_path / "box.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


class FleetWatcher:
    """The admin's view: a persistent MQTT 5 session (the broker queues while we are cut off),
    reconnecting by itself, validating every message against its schema."""

    def __init__(self, broker, topic_filter: str) -> None:
        login = broker.admin()
        self.messages: list[tuple[str, dict[str, Any], bool]] = []
        self.invalid: list[str] = []
        self._cond = threading.Condition()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"watch-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
        self._client.tls_set(ca_certs=str(broker.ca_file))
        self._client.username_pw_set(login.username, login.password_file.read_text().strip())
        self._client.reconnect_delay_set(1, 2)
        self._client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(topic_filter, qos=1)
        self._client.on_message = self._on_message
        expiry = Properties(PacketTypes.CONNECT)
        expiry.SessionExpiryInterval = 600
        self._client.connect(broker.host, broker.port, keepalive=5, clean_start=False, properties=expiry)
        self._client.loop_start()

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        parts = split_topic(message.topic)
        leaf = parts[2] if parts else "?"
        try:
            payload = json.loads(message.payload)
        except ValueError:
            payload = None
        # What boxes publish must match its schema; commands are the admin's (test) input.
        found = [] if leaf.startswith("cmd/") else problems(leaf, payload) if payload is not None else ["not JSON"]
        with self._cond:
            if found:
                self.invalid.append(f"{message.topic}: {found}")
            self.messages.append((leaf, payload, bool(message.retain)))
            self._cond.notify_all()

    def wait_for(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.messages):
                if not self._cond.wait(max(0.0, min(0.5, deadline - time.monotonic()))) and time.monotonic() > deadline:
                    raise AssertionError(f"timed out waiting for {what}; got {len(self.messages)} messages")

    def usage(self) -> list[dict[str, Any]]:
        with self._cond:
            return [p for leaf, p, _ in self.messages if leaf == "usage" and p and p.get("kind") == "utterance"]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def start_box(config: Path, count: int, interval: float = 0.0, hold: float = 0.0, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.telemetry_box", str(config), "--count", str(count), "--interval", str(interval), "--hold", str(hold), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def delivery_report(usage: list[dict[str, Any]], expected: int) -> tuple[int, int, bool]:
    """(distinct ids, duplicates, first occurrences in seq order)."""
    first: dict[str, int] = {}
    for record in usage:
        first.setdefault(record["id"], record["seq"])
    seqs = list(first.values())
    return len(first), len(usage) - len(first), seqs == sorted(seqs)


def test_broker_down_for_30_s_during_1000_events_loses_nothing(broker, tmp_path: Path, capsys) -> None:
    config = box_config(broker, tmp_path, "city", "outage")
    watcher = FleetWatcher(broker, "madoguchi/v1/city/outage/#")
    box = start_box(config, 1000, interval=0.035)  # ~35 s of counter traffic
    try:
        time.sleep(6.0)
        broker.stop()
        time.sleep(30.0)
        broker.start()
        out, err = box.communicate(timeout=150)
        assert box.returncode == 0, err[-3000:]
        watcher.wait_for(lambda m: len({p["id"] for leaf, p, _ in m if leaf == "usage" and p.get("kind") == "utterance"}) >= 1000, 60, "1000 usage records")
    finally:
        box.kill()
        watcher.close()
    distinct, duplicates, ordered = delivery_report(watcher.usage(), 1000)
    with capsys.disabled():
        print(f"\nbroker down 30 s: {distinct} of 1000 arrived, {duplicates} QoS 1 duplicates (removable by id), in order: {ordered}")
    assert distinct == 1000 and ordered
    assert not watcher.invalid, watcher.invalid[:5]
    assert all("text" not in p and "translation" not in p for p in watcher.usage())  # sharing is off


def test_kill_9_mid_flush_then_restart_loses_nothing_and_will_says_offline(broker, tmp_path: Path, capsys) -> None:
    config = box_config(broker, tmp_path, "city", "crash")
    watcher = FleetWatcher(broker, "madoguchi/v1/city/crash/#")
    first = start_box(config, 1000, 0.0, 0.0, "--append-first")  # 1,000 counted, then the flush starts
    try:
        watcher.wait_for(lambda m: sum(1 for leaf, p, _ in m if leaf == "usage") >= 300, 60, "the flush to be under way")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed_at = time.monotonic()
        watcher.wait_for(lambda m: any(leaf == "status" and p["state"] == "offline" for leaf, p, _ in m), 15, "the will")
        will_after = time.monotonic() - killed_at
        offline = next(p for leaf, p, _ in watcher.messages if leaf == "status" and p["state"] == "offline")
        assert offline["reason"] == "connection_lost" and will_after <= 5 * 1.5 + 1.0  # within the keep-alive
        appended = sum(1 for line in first.stdout.read().splitlines() if line.startswith("appended"))
        assert appended == 1000
        before_restart = len({p["id"] for p in watcher.usage()})
        assert before_restart < 1000  # it really died mid-flush
        second = start_box(config, 0, hold=3.0)  # same spool: forwards what the first one could not
        restarted = time.monotonic()
        watcher.wait_for(lambda m: len({p["id"] for leaf, p, _ in m if leaf == "usage" and p.get("kind") == "utterance"}) >= appended, 60, "every appended record")
        drain_rate = (appended - before_restart) / (time.monotonic() - restarted)
        fresh = broker.subscriber("madoguchi/v1/city/crash/status")
        try:  # a dashboard started now sees the box online again: retained
            fresh.wait_for(lambda m: any(json.loads(p)["state"] == "online" and retained for _, p, retained in m), 10)
        finally:
            fresh.close()
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err[-3000:]
    finally:
        first.kill()
        watcher.close()
    distinct, duplicates, ordered = delivery_report(watcher.usage(), appended)
    with capsys.disabled():
        print(f"\nkill -9 mid-flush: {before_restart} of 1000 delivered before the kill, {distinct} after the restart, {duplicates} duplicates, in order: {ordered}; will after {will_after:.1f} s; backlog forwarded at {drain_rate:.0f} events/s (incl. process start, TLS)")
    assert distinct == appended and ordered
    assert any(leaf == "status" and p["state"] == "offline" and p["reason"] == "shutdown" for leaf, p, _ in watcher.messages)
    assert not watcher.invalid, watcher.invalid[:5]


def test_a_box_that_stops_answering_is_offline_within_the_keepalive(broker, tmp_path: Path) -> None:
    """A hung box or a cut cable closes no socket: the broker must notice by the missing pings."""
    config = box_config(broker, tmp_path, "city", "hang")
    watcher = FleetWatcher(broker, "madoguchi/v1/city/hang/status")
    box = start_box(config, 1, 0.0, 60.0)
    try:
        watcher.wait_for(lambda m: any(p["state"] == "online" for _, p, _ in m), 20, "online")
        box.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        watcher.wait_for(lambda m: any(p["state"] == "offline" for _, p, _ in m), 25, "the will")
        # The broker gives up 1.5 keep-alives (7.5 s) after the last packet, but mosquitto 2.0
        # looks at keep-alives only every ~6 s: 8-14 s here. Without a will: never offline.
        assert time.monotonic() - stopped <= 5 * 1.5 + 6.5 + 1.0
        box.send_signal(signal.SIGCONT)  # back: reconnects and says online again (retained)
        watcher.wait_for(lambda m: m[-1][1]["state"] == "online" and len(m) >= 3, 20, "online again")
    finally:
        box.send_signal(signal.SIGCONT)
        box.kill()
        watcher.close()
    assert not watcher.invalid


def test_commands_over_the_broker_and_only_from_the_box_own_topic(broker, tmp_path: Path) -> None:
    config = box_config(broker, tmp_path, "ward2", "desk1")
    watcher = FleetWatcher(broker, "madoguchi/v1/ward2/#")
    box = start_box(config, 0, 0.0, 30.0)
    admin = broker.subscriber("madoguchi/v1/ward2/+/cmd_result")  # also an admin client that can publish
    try:
        watcher.wait_for(lambda m: any(leaf == "status" and p["state"] == "online" for leaf, p, _ in m), 20, "online")
        publish = admin._client.publish  # the admin login may write any box's cmd topics
        publish("madoguchi/v1/ward2/desk1/cmd/ping", json.dumps({"id": "p1"}), qos=1).wait_for_publish(5)
        publish("madoguchi/v1/ward2/desk9/cmd/ping", json.dumps({"id": "not-mine"}), qos=1).wait_for_publish(5)
        publish("madoguchi/v1/ward2/desk1/cmd/set_config", json.dumps({"id": "s1", "args": {"set": {"mqtt": {"health_interval_s": 7}}}}), qos=1).wait_for_publish(5)
        publish("madoguchi/v1/ward2/desk1/cmd/set_config", json.dumps({"id": "s2", "args": {"set": {"sides": {"resident_azimuth_deg": 275}}}}), qos=1).wait_for_publish(5)
        publish("madoguchi/v1/ward2/desk1/cmd/format_disk", b"{oops", qos=1).wait_for_publish(5)
        results = lambda m: {p["id"]: p for leaf, p, _ in m if leaf == "cmd_result"}
        watcher.wait_for(lambda m: {"p1", "s1", "s2", None} <= set(results(m)), 20, "four results")
        got = results(watcher.messages)
        assert got["p1"]["ok"] and got["p1"]["result"]["pong"]
        assert got["s1"]["ok"] and got["s1"]["result"]["restart_required"] == []
        assert not got["s2"]["ok"] and got["s2"]["error"]["code"] == "invalid_config"  # 275 is next to the staff at 270
        assert got[None]["error"]["code"] == "bad_json"
        assert "not-mine" not in got  # desk1 never hears desk9's commands
        fleet_layer = (tmp_path / "state" / "fleet.toml").read_text()
        assert "health_interval_s = 7" in fleet_layer and "resident_azimuth_deg" not in fleet_layer
    finally:
        admin.close()
        box.kill()
        watcher.close()
    assert not watcher.invalid, watcher.invalid[:5]


def test_transcripts_travel_only_when_the_site_shares_them(broker, tmp_path: Path) -> None:
    for share in (False, True):
        folder = tmp_path / f"share-{share}"
        folder.mkdir()
        config = box_config(broker, folder, "privacy", f"box-{share}".lower(), share=share)
        watcher = FleetWatcher(broker, f"madoguchi/v1/privacy/box-{share}/#".lower())
        box = start_box(config, 5)
        try:
            assert box.wait(60) == 0
            watcher.wait_for(lambda m: sum(1 for leaf, p, _ in m if leaf == "usage" and p["kind"] == "utterance") >= 5, 20, "usage")
        finally:
            box.kill()
            watcher.close()
        words = [p for leaf, p, _ in watcher.messages if "住民票" in json.dumps(p, ensure_ascii=False)]
        assert bool(words) == share
        assert not watcher.invalid


def replay_over_mqtt(broker, topics: str, config: Path, recording: Path, speech_store) -> tuple[list[dict], FleetWatcher]:
    """``madoguchi replay --json`` with telemetry on: the printed records, and what the fleet received."""
    watcher = FleetWatcher(broker, topics)
    try:
        result = subprocess.run([sys.executable, "-m", "madoguchi", "replay", "--no-system-config", "--config", str(config), "--json", str(recording)],
                                capture_output=True, check=False, text=True, timeout=600, cwd=ROOT, env={**os.environ, "MADOGUCHI_MODELS_DIR": str(speech_store.root)})
        assert result.returncode == 0, result.stderr
        printed = [json.loads(line) for line in result.stdout.splitlines()]
        watcher.wait_for(lambda m: sum(1 for leaf, p, _ in m if leaf == "usage" and p["kind"] == "utterance") >= len(printed), 20, "usage")
        watcher.wait_for(lambda m: any(leaf == "usage" and p["kind"] == "session" for leaf, p, _ in m), 10, "the session record")
    finally:
        watcher.close()
    return printed, watcher


def test_replay_publishes_one_usage_record_per_utterance(broker, tmp_path: Path, speech_store) -> None:
    config = box_config(broker, tmp_path, "demo", "replay")
    demo = ROOT / "firmware" / "madoguchi" / "data" / "demo"
    config.write_text(config.read_text() + "\n" + (demo / "counter-demo.toml").read_text().split("[array]", 1)[1].join(["[array]", ""]))
    printed, watcher = replay_over_mqtt(broker, "madoguchi/v1/demo/replay/#", config, demo / "counter-demo.flac", speech_store)
    usage = watcher.usage()
    # What the counter was shown: the side as printed (corrected by language ID), and nothing guessed for what was not understood.
    assert [u["side"] for u in usage] == [None if p["rejected"] else p["side"] for p in printed]
    assert [u["rejected"] for u in usage] == [p["rejected"] for p in printed]
    # Languages and every stage's timing are reported; the words are not (share_transcripts is off).
    assert [u["lang"] for u in usage] == [None if p["rejected"] else p["lang"] for p in printed] and {"ja", "en"} <= {u["lang"] for u in usage}
    assert all({"vad_ms", "asr_ms", "mt_ms", "latency_ms"} <= set(u["timings_ms"]) and "text" not in u and "translation" not in u for u in usage)
    session = next(p for leaf, p, _ in watcher.messages if leaf == "usage" and p["kind"] == "session")
    understood = sum(1 for p in printed if not p["rejected"])
    assert session["utterances"] == understood and session["by_side"]["staff"] + session["by_side"]["resident"] == understood
    assert session["rejected"] == len(printed) - understood
    assert not watcher.invalid


def test_speech_that_was_not_understood_reaches_the_fleet_as_such(broker, tmp_path: Path, speech_store) -> None:
    """The issue's bar on a recording of our own: a Portuguese resident, quiet, three neighbours talking
    (tests/sim s07). What ASR rejects is counted as rejected, with why, under no language or side; the
    report built from what the fleet received counts languages from understood speech only."""
    from madoguchi.fleet.collect import FleetStore
    from madoguchi.fleet.report import summarize
    from tests.sim.counter import build_scene, standard_scenes

    scene = build_scene(next(spec for spec in standard_scenes() if spec.name.startswith("s07-")))
    config = box_config(broker, tmp_path, "sim", "pt-desk")
    config.write_text(config.read_text() + "\n" + scene.config_path.read_text())
    printed, watcher = replay_over_mqtt(broker, "madoguchi/v1/sim/pt-desk/#", config, scene.wav_path, speech_store)
    assert not watcher.invalid, watcher.invalid[:5]  # the schema forbids a language, side or words on a rejected record
    usage = sorted({u["id"]: u for u in watcher.usage()}.values(), key=lambda u: u["seq"])  # the order the box printed them
    rejected = [p for p in printed if p["rejected"]]
    assert rejected and len(rejected) < len(printed), [(p["side"], p["lang"], p["rejected"]) for p in printed]  # this recording has both
    assert len(usage) == len(printed)
    for p, u in zip(printed, usage):
        assert u["timings_ms"]["asr_ms"] == p["asr_ms"]
        if p["rejected"]:
            assert (u["rejected"], u["lang"], u["side"], u["target_lang"]) == (p["rejected"], None, None, None)
        else:
            assert (u["rejected"], u["lang"], u["side"]) == (None, p["lang"], p["side"])
    with FleetStore(tmp_path / "fleet.sqlite3") as store:
        for leaf, payload, _ in watcher.messages:
            if leaf == "usage":
                store.add("sim", "pt-desk", "usage", payload)
        store.commit()
        summary = summarize(store.records())
    understood_langs = {p["lang"] for p in printed if not p["rejected"]}
    assert set(summary.languages) == understood_langs
    assert (summary.utterances, summary.not_understood) == (len(printed) - len(rejected), len(rejected))


def test_the_service_says_in_health_when_the_sides_do_not_match_the_room(broker, tmp_path: Path) -> None:
    """Live: the demo played in real time with the staff configured at 183 deg instead of 270."""
    config = box_config(broker, tmp_path, "demo", "wrong-sides")
    demo = ROOT / "firmware" / "madoguchi" / "data" / "demo"
    sides = (demo / "counter-demo.toml").read_text().replace("staff_azimuth_deg = 270.000", "staff_azimuth_deg = 183.0")
    config.write_text(config.read_text() + '\n[display]\ndriver = "dummy"\n\n[controls]\nenabled = false\n\n[array]' + sides.split("[array]", 1)[1])
    watcher = FleetWatcher(broker, "madoguchi/v1/demo/wrong-sides/#")
    service = subprocess.Popen([sys.executable, "-m", "madoguchi", "run", "--stages", "frontend", "--no-system-config", "--config", str(config), "--replay", str(demo / "counter-demo.flac")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        watcher.wait_for(lambda m: any(leaf == "health" and (p.get("placement") or {}).get("off_sector") for leaf, p, _ in m), 60, "health saying the speech is off the sides")
        _, err = service.communicate(timeout=60)  # the recording ends: the service stops by itself
        assert service.returncode == 0, err[-2000:]
    finally:
        service.kill()
        watcher.close()
    placement = next(p["placement"] for leaf, p, _ in watcher.messages if leaf == "health" and (p.get("placement") or {}).get("off_sector"))
    assert placement["window_s"] == 300.0 and placement["share"] >= 0.3
    assert any(d["side"] is None and 250 <= d["azimuth_deg"] <= 270 for d in placement["directions"])
    assert err.count("came from outside both sides' sectors") == 1 and "madoguchi calibrate" in err  # said once, in the log
    assert not watcher.invalid, watcher.invalid[:5]


def test_the_service_reports_usage_and_says_offline_on_sigterm(broker, tmp_path: Path) -> None:
    config = box_config(broker, tmp_path, "demo", "service")
    demo = ROOT / "firmware" / "madoguchi" / "data" / "demo"
    config.write_text(config.read_text() + "\n[array]" + (demo / "counter-demo.toml").read_text().split("[array]", 1)[1])
    watcher = FleetWatcher(broker, "madoguchi/v1/demo/service/#")
    service = subprocess.Popen([sys.executable, "-m", "madoguchi", "run", "--stages", "frontend", "--no-system-config", "--config", str(config), "--replay", str(demo / "counter-demo.flac")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        watcher.wait_for(lambda m: any(leaf == "status" and p["state"] == "online" and p["models"] for leaf, p, _ in m), 20, "online")
        watcher.wait_for(lambda m: sum(1 for leaf, p, _ in m if leaf == "usage") >= 2, 30, "usage while it runs")
        service.send_signal(signal.SIGTERM)
        out, err = service.communicate(timeout=20)
        assert service.returncode == 0, err[-2000:]
        watcher.wait_for(lambda m: any(leaf == "status" and p["state"] == "offline" and p["reason"] == "shutdown" for leaf, p, _ in m), 10, "offline")
        # The session ended with the service and was reported, not lost.
        watcher.wait_for(lambda m: any(leaf == "usage" and p["kind"] == "session" for leaf, p, _ in m), 10, "the session record")
    finally:
        service.kill()
        watcher.close()
    assert len(watcher.usage()) == len(out.splitlines())
    assert all(u["timings_ms"]["endpoint_ms"] >= 0 for u in watcher.usage())
    assert not watcher.invalid, watcher.invalid[:5]


def test_the_operator_call_button_reaches_the_fleet(broker, tmp_path: Path) -> None:
    """The clerk presses operator call (gpiozero's MockFactory pin) while the service runs: one event."""
    import asyncio
    import io

    import soundfile
    from gpiozero.pins.mock import MockFactory

    from madoguchi.app.parts import recording_source
    from madoguchi.config import load_settings
    from madoguchi.daemon import serve
    from madoguchi.sdnotify import SystemdNotifier

    demo = ROOT / "firmware" / "madoguchi" / "data" / "demo"
    config = box_config(broker, tmp_path, "demo", "counter")
    array = "[array]" + (demo / "counter-demo.toml").read_text().split("[array]", 1)[1]
    config.write_text(config.read_text() + '\n[display]\ndriver = "dummy"\n\n[controls]\nbounce_s = 0.01\n\n' + array)
    settings = load_settings(config, system_layers=False)
    audio, rate = soundfile.read(demo / "counter-demo.flac", dtype="float32")
    short = tmp_path / "first-5s.flac"
    soundfile.write(short, audio[: 5 * rate], rate)
    factory = MockFactory()
    watcher = FleetWatcher(broker, "madoguchi/v1/demo/counter/#")

    async def service_with_a_press() -> int:
        task = asyncio.create_task(serve(settings, recording_source(settings, short, realtime=True), io.StringIO(), SystemdNotifier(""), pin_factory=factory))
        await asyncio.sleep(1.0)
        button = factory.pin(settings.controls.operator_pin)
        button.drive_low()
        await asyncio.sleep(0.1)
        button.drive_high()
        return await task

    try:
        asyncio.run(asyncio.wait_for(service_with_a_press(), 60))
        watcher.wait_for(lambda m: any(leaf == "event" and p["kind"] == "operator_call" for leaf, p, _ in m), 20, "the operator call")
        calls = [p for leaf, p, _ in watcher.messages if leaf == "event" and p["kind"] == "operator_call"]
        errors = [p["code"] for leaf, p, _ in watcher.messages if leaf == "event" and p["kind"] == "error"]
        faces = [p for leaf, p, _ in watcher.messages if leaf == "health" and p.get("counter")]
    finally:
        watcher.close()
    assert len(calls) == 1 and calls[0]["code"] == "button"
    assert errors == []  # dummy panels and mock pins: nothing to complain about
    assert faces and faces[-1]["panels"] == 2 and faces[-1]["counter"]["mode"] == "interpret"  # the fleet sees the buttons' state
    assert not watcher.invalid, watcher.invalid[:5]
