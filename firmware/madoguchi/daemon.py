"""``madoguchi run``: the box's service, live capture through the front end under systemd.

One asyncio loop owns the process: a worker thread captures and runs the front end (blocking
PortAudio reads and numpy stay off the loop) and posts events back; the loop prints them, keeps
systemd informed (READY, STATUS, WATCHDOG) and stops everything cleanly on SIGTERM or SIGINT.
Later stages (ASR, MT, displays, MQTT) join as further tasks fed by the same events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from madoguchi import __version__
from madoguchi.audio.source import AudioSource
from madoguchi.config import Settings
from madoguchi.errors import AudioDeviceNotFoundError
from madoguchi.events import FrontendEvent, Utterance
from madoguchi.frontend.pipeline import Frontend
from madoguchi.frontend.vad import bundled_model_path
from madoguchi.replay import build_frontend, utterance_record
from madoguchi.sdnotify import SystemdNotifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AudioState:
    """The capture device's state, for STATUS and the log: capturing, mic_lost, waiting_for_mic."""

    state: str
    detail: str = ""


Item = FrontendEvent | AudioState | BaseException | None


def _open_when_present(source: AudioSource, stop: threading.Event, retry_s: float | None, post: Callable[[Item], None]) -> bool:
    """Open the source; with ``retry_s``, wait for an unplugged array to appear. False if stopped first.

    The service (``--wait-for-mic``) waits for the array and says so in its status, rather than
    failing and exhausting systemd's restart budget; by hand, a missing array is an error.
    """
    while not stop.is_set():
        try:
            source.open()
            return True
        except AudioDeviceNotFoundError as err:
            if retry_s is None:
                raise
            post(AudioState("waiting_for_mic", str(err)))
            stop.wait(retry_s)
    return False


def _capture_loop(source: AudioSource, frontend: Frontend, stop: threading.Event, retry_s: float | None, post: Callable[[Item], None]) -> None:
    """Worker thread: blocks from the source through the front end; ``None`` marks the end."""
    try:
        if not _open_when_present(source, stop, retry_s, post):
            post(None)
            return
        with source:
            for block in source.blocks():
                for event in frontend.process(block):
                    post(event)
            for event in frontend.flush():
                post(event)
    except BaseException as err:  # handed to the loop, which re-raises it: nothing is swallowed
        post(err)
        return
    post(None)


async def _report_audio_state(state: AudioState, previous: AudioState, box: dict, notifier: SystemdNotifier, telemetry: object | None) -> None:
    """Log, STATUS and (with telemetry) an error event on loss, a recovered event when it is back."""
    healthy = state.state == "capturing"
    (log.info if healthy else log.warning)("audio %s%s", state.state, f": {state.detail}" if state.detail else "")
    notifier.notify(status=f"audio: {state.state}")
    box["audio_state"] = state.state
    if not healthy:
        box["last_error"] = state.state
    event = ("error", state.state) if not healthy else ("recovered", "mic_back") if previous.state in ("mic_lost", "waiting_for_mic") else None
    if telemetry is not None and event is not None:
        await asyncio.get_running_loop().run_in_executor(None, telemetry.record_event, *event, state.detail)


async def _watchdog(notifier: SystemdNotifier, interval_s: float) -> None:
    while True:
        notifier.notify(watchdog="1")
        await asyncio.sleep(interval_s)


async def serve(settings: Settings, source: AudioSource, out: TextIO, notifier: SystemdNotifier | None = None, wait_for_device: bool = False,
                layers: list | None = None) -> int:
    """Run until the source ends or a stop signal arrives; returns the number of utterances.

    With ``[mqtt] host`` set, usage and events go to the fleet (``layers``: the parsed config
    files, which remote set_config commands extend).
    """
    notifier = notifier or SystemdNotifier()
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Item] = asyncio.Queue()
    frontend = build_frontend(settings)
    stop_event = threading.Event()
    box = {"audio_state": "starting", "last_error": None}

    def box_state() -> dict[str, object]:
        return {**box, "mic_level_dbfs": frontend.background_dbfs}

    def apply_live(new: Settings) -> None:
        logging.getLogger().setLevel(new.log.level)

    telemetry = None
    if settings.mqtt.enabled:
        from madoguchi.telemetry.service import Telemetry

        telemetry = Telemetry(settings, layers or [], models=[bundled_model_path().stem], box_state=box_state, on_settings=apply_live)
        telemetry.start()

    def stop() -> None:
        if not stop_event.is_set():
            stop_event.set()
            log.info("stop requested; closing the audio source")
            notifier.notify(stopping="1", status="stopping")
            source.close()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not in the main thread (tests)
            loop.add_signal_handler(sig, stop)
    post: Callable[[Item], None] = lambda item: loop.call_soon_threadsafe(queue.put_nowait, item)  # noqa: E731
    source.on_state = lambda state: post(AudioState(state))
    retry_s = settings.audio.reopen_interval_s if wait_for_device else None
    worker = loop.run_in_executor(None, _capture_loop, source, frontend, stop_event, retry_s, post)
    watchdog_s = notifier.watchdog_interval_s()
    watchdog = asyncio.create_task(_watchdog(notifier, watchdog_s)) if watchdog_s else None
    notifier.notify(ready="1", status=f"madoguchi {__version__}: listening ({settings.array.n_mics} mics)")
    log.info("madoguchi %s listening, config %s", __version__, settings.digest())
    count = 0
    audio_state = AudioState("starting")
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                if stop_event.is_set():
                    break
                if telemetry is not None:
                    await loop.run_in_executor(None, telemetry.record_event, "error", getattr(item, "code", "internal_error"), str(item))
                raise item
            if isinstance(item, AudioState):
                if item != audio_state:  # retries repeat the same state: say it once
                    await _report_audio_state(item, audio_state, box, notifier, telemetry)
                audio_state = item
                continue
            if isinstance(item, Utterance):
                count += 1
                out.write(json.dumps(utterance_record(item)) + "\n")
                out.flush()
                if telemetry is not None:  # a spool append (fsync): off the event loop
                    await loop.run_in_executor(None, telemetry.record_utterance, item)
                notifier.notify(status=f"{count} utterances; last: {item.side} at {item.azimuth_deg:.0f} deg")
    finally:
        stop()
        if watchdog:
            watchdog.cancel()
        await worker
        if telemetry is not None:
            await loop.run_in_executor(None, telemetry.stop)
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    return count
