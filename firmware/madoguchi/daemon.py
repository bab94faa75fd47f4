"""``madoguchi run``: the box's service, live capture through the whole pipeline under systemd.

The session runner (app/runner.py) with the array as its source and every sink a box in the
field has: JSON lines on stdout (the journal), the faces and buttons, the placement watch, the
fleet's telemetry when ``[mqtt] host`` is set, and systemd (READY, STATUS, WATCHDOG, STOPPING).
SIGTERM or SIGINT stops it cleanly: what was heard before is still interpreted and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import TYPE_CHECKING, TextIO

from madoguchi.app.runner import Runner, Sink
from madoguchi.app.sinks import Faces, PlacementWatch, Printer, Systemd, TelemetrySink, ThermalGuard, session_prompt
from madoguchi.audio.source import AudioSource
from madoguchi.config import Settings
from madoguchi.sdnotify import SystemdNotifier

if TYPE_CHECKING:
    from madoguchi.frontend.wake import WakePhraseDetector
    from madoguchi.interpreter.stage import Interpreter

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _apply_live(settings: Settings) -> None:
    """A fleet set_config took effect: what can change without a restart (the log level)."""
    logging.getLogger().setLevel(settings.log.level)


async def serve(settings: Settings, source: AudioSource, out: TextIO, notifier: SystemdNotifier | None = None, wait_for_device: bool = False,
                layers: list | None = None, interpreter: Interpreter | None = None, pin_factory: object | None = None,
                hung_after_s: float | None = None, wake: WakePhraseDetector | None = None) -> int:
    """Run until the source ends or a stop signal arrives; returns the number of utterances.

    Without an ``interpreter`` (``--stages frontend``) utterances are reported after side
    detection. ``layers``: the parsed config files, which remote set_config commands extend.
    ``pin_factory``: gpiozero's (tests pass its MockFactory). ``wake``: privacy mode's wake-phrase detector.
    """
    prompt = session_prompt(settings, wake.phrase if wake is not None else None)
    sinks: list[Sink] = [Printer(out), Faces(settings, pin_factory, prompt), PlacementWatch(settings, live=True), ThermalGuard(settings)]
    if settings.mqtt.enabled:
        sinks.append(TelemetrySink(settings, layers or [], on_settings=_apply_live))
    sinks.append(Systemd(notifier or SystemdNotifier()))  # last: READY once everything else is up
    runner = Runner(settings, source, sinks, interpreter=interpreter, paced=True, retry_s=settings.audio.reopen_interval_s if wait_for_device else None,
                    wake=wake.process if wake is not None else None, **({} if hung_after_s is None else {"hung_after_s": hung_after_s}))
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not in the main thread (tests)
            loop.add_signal_handler(sig, runner.stop)
    try:
        return await runner.run()
    finally:
        for sig in STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
