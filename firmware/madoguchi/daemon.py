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
from collections.abc import Callable
from typing import TextIO

from madoguchi import __version__
from madoguchi.audio.source import AudioSource
from madoguchi.config import Settings
from madoguchi.events import FrontendEvent, Utterance
from madoguchi.frontend.pipeline import Frontend
from madoguchi.replay import build_frontend, utterance_record
from madoguchi.sdnotify import SystemdNotifier

log = logging.getLogger(__name__)


def _capture_loop(source: AudioSource, frontend: Frontend, post: Callable[[FrontendEvent | BaseException | None], None]) -> None:
    """Worker thread: blocks from the source through the front end; ``None`` marks the end."""
    try:
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


async def _watchdog(notifier: SystemdNotifier, interval_s: float) -> None:
    while True:
        notifier.notify(watchdog="1")
        await asyncio.sleep(interval_s)


async def serve(settings: Settings, source: AudioSource, out: TextIO, notifier: SystemdNotifier | None = None) -> int:
    """Run until the source ends or a stop signal arrives; returns the number of utterances."""
    notifier = notifier or SystemdNotifier()
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[FrontendEvent | BaseException | None] = asyncio.Queue()
    frontend = build_frontend(settings)
    stopping = False

    def stop() -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            log.info("stop requested; closing the audio source")
            notifier.notify(stopping="1", status="stopping")
            source.close()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not in the main thread (tests)
            loop.add_signal_handler(sig, stop)
    worker = loop.run_in_executor(None, _capture_loop, source, frontend, lambda item: loop.call_soon_threadsafe(queue.put_nowait, item))
    watchdog_s = notifier.watchdog_interval_s()
    watchdog = asyncio.create_task(_watchdog(notifier, watchdog_s)) if watchdog_s else None
    notifier.notify(ready="1", status=f"madoguchi {__version__}: listening ({settings.array.n_mics} mics)")
    log.info("madoguchi %s listening, config %s", __version__, settings.digest())
    count = 0
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                if stopping:
                    break
                raise item
            if isinstance(item, Utterance):
                count += 1
                out.write(json.dumps(utterance_record(item)) + "\n")
                out.flush()
                notifier.notify(status=f"{count} utterances; last: {item.side} at {item.azimuth_deg:.0f} deg")
    finally:
        stop()
        if watchdog:
            watchdog.cancel()
        await worker
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    return count
