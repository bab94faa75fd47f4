"""Telemetry for one box: spool usage and events, forward them, publish status and health, obey commands.

Three small threads beside paho's: the forwarder (spool → broker, one message in flight, deleted
from the spool only on PUBACK: order is kept and a lost PUBACK only repeats that one message),
the health ticker, and the command worker. Threads rather than asyncio tasks because paho's
network loop is a thread and the forwarder must wait on its PUBACKs; nothing here blocks the
daemon's event loop, which only calls ``record_*`` (a spool append).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from madoguchi.config import Settings, read_toml, settings_from_layers
from madoguchi.events import Interpretation, Utterance
from madoguchi.telemetry import commands, health, messages
from madoguchi.telemetry.link import Link
from madoguchi.telemetry.spool import Spool
from madoguchi.telemetry.topics import Topics

log = logging.getLogger(__name__)

ACK_TIMEOUT_S = 10.0
SESSION_IDLE_S = 120.0  # a pause this long at the counter ends a session


def _json(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()


class Telemetry:
    def __init__(self, settings: Settings, layers: list[tuple[str, dict[str, Any]]], *, models: list[str] | None = None,
                 box_state: Callable[[], dict[str, Any]] = dict, on_settings: Callable[[Settings], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.topics = Topics.for_settings(settings.mqtt)
        self._layers = layers
        self._models = models or []
        self._box_state = box_state  # mic_level_dbfs, audio_state, last_error, placement … from the daemon
        self._on_settings = on_settings
        self._clock = clock
        mqtt = settings.mqtt
        self.spool = Spool.for_settings(mqtt, clock)
        self.link = Link(mqtt, self.topics, _json(messages.status_offline("connection_lost")), self._announce, layers[-1][0] if layers else "config")
        self.sessions = messages.SessionTracker(SESSION_IDLE_S, lambda: uuid.uuid4().hex)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=f, name=f"telemetry-{f.__name__.strip('_')}", daemon=True) for f in (self._forward, self._tick_health, self._obey)]

    def start(self) -> None:
        self.link.start()
        for thread in self._threads:
            thread.start()
        log.info("telemetry to %s:%s under %s", self.settings.mqtt.host, self.settings.mqtt.port, self.topics.prefix)

    def stop(self, drain_s: float = 2.0) -> None:
        """Close the session, forward what the broker will take within ``drain_s``, say offline."""
        ended = self.sessions.close()
        if ended:
            self._append(self.topics.usage, ended)
        self.flush(drain_s)
        self._stop.set()
        self._wake.set()
        mid = self.link.publish(self.topics.status, _json(messages.status_offline("shutdown", self._clock())), retain=True)
        if mid is not None:
            self.link.wait_ack(mid, 2.0)
        for thread in self._threads:
            thread.join(5.0)
        self.link.stop()
        self.spool.close()

    def flush(self, timeout_s: float) -> bool:
        """Wait until the spool is empty; False if the broker did not take it all in time."""
        deadline = time.monotonic() + timeout_s
        while self.spool.stats().pending and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.05)
        return self.spool.stats().pending == 0

    # --- what the pipeline reports ---
    def record_utterance(self, utterance: Utterance, **details: Any) -> None:
        now = self._clock()
        session, ended = self.sessions.on_utterance(utterance, now, details.get("lang"), details.get("mode", "interpret"),
                                                    side=details.get("side"), rejected=details.get("rejected"))
        if ended:
            self._append(self.topics.usage, ended)
        record = messages.utterance_usage(utterance, session, share_transcripts=self.settings.mqtt.share_transcripts, **details)
        self._append(self.topics.usage, record)

    def record_interpretation(self, result: Interpretation) -> None:
        """Usage of one interpreted utterance, built from the Interpretation the counter was shown:
        its side (corrected by language ID), language and ``rejected`` (a rejected one's guessed
        language stays out); words only leave if the site shares them."""
        translation = result.translation
        self.record_utterance(result.utterance, side=result.side, lang=result.lang, target_lang=translation.target_lang if translation else None,
                              rejected=result.rejected, timings_ms=result.timings_ms, mode=result.mode, text=result.text or None,
                              translation=translation.text if translation else None)

    def record_event(self, kind: str, code: str, message: str = "") -> None:
        self._append(self.topics.event, messages.event(kind, code, message))

    def _append(self, topic: str, record: dict[str, Any]) -> None:
        self.spool.append(topic, record)
        self._wake.set()

    # --- threads ---
    def _announce(self) -> None:
        """On every (re)connect: the retained online status, then whatever waited in the spool."""
        self.link.publish(self.topics.status, _json(messages.status_online(self.settings.digest(), self._models, self._clock())), retain=True)
        self._wake.set()

    def _forward(self) -> None:
        while not self._stop.is_set():
            try:
                self._forward_some()
            except Exception:  # a thread that dies forwards nothing again: say why, go on
                log.exception("forwarding the spool failed; trying again")
                self._stop.wait(1.0)

    def _forward_some(self) -> None:
        """One round: wait for the link, then send what the spool holds, oldest first."""
        if not self.link.connected.wait(0.5):
            return
        items = self.spool.pending(limit=100)
        if not items:
            self._wake.wait(1.0)
            self._wake.clear()
            ended = self.sessions.expire(self._clock())
            if ended:
                self._append(self.topics.usage, ended)
            return
        for item in items:
            mid = self.link.publish(item.topic, item.payload)
            reason = None if mid is None else self.link.wait_ack(mid, ACK_TIMEOUT_S)
            if reason is None:
                return  # link down or no PUBACK: it stays spooled and goes again after reconnect
            if reason >= 0x80:  # MQTT 5: the broker refuses it for good (ACL, size): don't retry forever
                log.error("broker refused %s seq %d (reason %#x); dropping it", item.topic, item.seq, reason)
                self.spool.drop(item.seq, "refused")
            else:
                self.spool.ack(item.seq)

    def health_message(self) -> dict[str, Any]:
        state = self._box_state()
        return health.readings(self.settings.paths.state_dir, mic_level_dbfs=state.get("mic_level_dbfs"), audio_state=state.get("audio_state"),
                               last_error=state.get("last_error"), spool=self.spool.stats().as_health(), ts=self._clock(),
                               panels=state.get("panels"), counter=state.get("counter"), placement=state.get("placement"),
                               session=state.get("session"), thermal_load=state.get("thermal"))

    def publish_health(self) -> None:
        self.link.publish(self.topics.health, _json(self.health_message()), retain=True)

    def _tick_health(self) -> None:
        while not self._stop.wait(self.settings.mqtt.health_interval_s):
            try:
                self.spool.enforce_bounds()
                self.publish_health()
            except Exception:  # the next tick tries again: health must outlive one bad reading
                log.exception("health tick failed")

    def _obey(self) -> None:
        while not self._stop.is_set():
            try:
                topic, payload = self.link.commands.get(timeout=0.5)
            except queue.Empty:
                continue
            outcome = commands.decide(self.topics.command_name(topic), payload, self._layers, self.settings)
            try:
                commands.apply(outcome)
            except OSError as err:
                outcome = commands.Outcome({**outcome.result, "ok": False, "error": {"code": "write_failed", "message": str(err)}})
            if outcome.reload_settings and outcome.result["ok"]:
                self._reload()
            if outcome.publish_health:
                self.publish_health()
            self.link.publish(self.topics.cmd_result, _json({**outcome.result, "ts": round(self._clock(), 3)}))
            log.info("command %s: %s", outcome.result["name"], "ok" if outcome.result["ok"] else outcome.result["error"]["code"])

    def _reload(self) -> None:
        fleet = self.settings.paths.fleet_config
        self._layers = [(n, d) for n, d in self._layers if n != str(fleet)] + [(str(fleet), read_toml(fleet))]
        self.settings = settings_from_layers(self._layers)
        if self._on_settings:
            self._on_settings(self.settings)
