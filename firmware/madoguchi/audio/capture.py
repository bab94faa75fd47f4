"""Live capture from a PortAudio input device (the USB mic array), surviving unplug and replug.

Every PortAudio call for one opening of the device (Pa_Initialize, open, reads, close,
Pa_Terminate) happens in one worker thread, a ``_Session``, feeding ``blocks()`` through a queue.
Why: a blocking read can hang for good when the device goes away (the ALSA pulse plugin when the
server stops answering; PortAudio's ALSA code on USB unplug, PortAudio issue #1037), and closing a
stream while another thread reads can crash (issue #1179). Waiting on a queue with a deadline
instead notices the stall, honours ``close()`` within a poll interval, and lets us reopen with a
fresh PortAudio, the only way PortAudio rescans its devices.
"""

from __future__ import annotations

import ctypes
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyaudio

from madoguchi.audio.source import AudioSource, StreamResampler, select_channels
from madoguchi.config import AudioSettings
from madoguchi.errors import AudioDeviceLostError, AudioDeviceNotFoundError, AudioFormatError, AudioSourceError

log = logging.getLogger(__name__)

STALL_S = 3.0  # no audio this long = device lost (an idle PulseAudio null sink takes up to 2 s for a first block)
OPEN_TIMEOUT_S = 5.0  # Pa_Initialize + open; longer means the audio system hangs
WEDGED_S = 10.0  # PortAudio still stuck in the lost device after this: only a process restart resets it
POLL_S = 0.1  # how often waits look at close(): bounds close() latency
QUEUE_S = 2.0  # audio buffered for a slow consumer before blocks are dropped
CLOSE_JOIN_S = 0.5  # close() waits this long for PortAudio to let go, then leaves it behind

_Item = tuple[str, Any]  # ("opened", InputDevice) | ("data", bytes) | ("error", Exception), plus "timeout"/"closed"

# Pa_Initialize/Pa_Terminate are process-global and not thread-safe: a session terminating while
# the next one initialised made PortAudio hand out stale device indices (-9996 Invalid device).
_PA_LOCK = threading.RLock()
_callbacks: list[Any] = []  # ctypes callbacks must live as long as the libraries may call them


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    max_input_channels: int
    default_sample_rate: float


def _text(raw: bytes | None) -> str:
    return (raw or b"").decode(errors="replace")


def _new_pyaudio() -> pyaudio.PyAudio:
    """A fresh PortAudio (rescans devices); call with _PA_LOCK held."""
    if not _callbacks:  # route ALSA's and JACK's probing chatter (dozens of lines) from stderr to debug logging
        alsa = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)(
            lambda file, line, func, err, fmt: log.debug("alsa %s:%d %s: %s", _text(file), line, _text(func), _text(fmt)))
        jack = ctypes.CFUNCTYPE(None, ctypes.c_char_p)(lambda msg: log.debug("jack: %s", _text(msg)))
        _callbacks.extend((alsa, jack))
        try:
            ctypes.CDLL("libasound.so.2").snd_lib_error_set_handler(alsa)
            libjack = ctypes.CDLL("libjack.so.0")
            libjack.jack_set_error_function(jack)
            libjack.jack_set_info_function(jack)
        except (OSError, AttributeError) as err:  # library absent: its messages simply stay on stderr
            log.debug("native audio messages stay on stderr: %s", err)
    return pyaudio.PyAudio()


def list_input_devices(pa: pyaudio.PyAudio | None = None) -> list[InputDevice]:
    """Input-capable devices as PortAudio sees them (without ``pa``: a fresh scan)."""
    if pa is None:
        with _PA_LOCK:
            pa = _new_pyaudio()
            try:
                return list_input_devices(pa)
            finally:
                pa.terminate()
    infos = [pa.get_device_info_by_index(i) for i in range(pa.get_device_count())]
    return [InputDevice(int(d["index"]), str(d["name"]), int(d["maxInputChannels"]), float(d["defaultSampleRate"]))
            for d in infos if int(d["maxInputChannels"]) > 0]


def _choose_device(pa: pyaudio.PyAudio, wanted: str) -> InputDevice:
    devices = list_input_devices(pa)
    if wanted:
        matches = [d for d in devices if wanted.lower() in d.name.lower()]
    else:
        try:
            default = int(pa.get_default_input_device_info()["index"])
        except OSError:  # PortAudio's way of saying there is no default input
            default = -1
        matches = [d for d in devices if d.index == default]
    if len(matches) > 1:
        log.info("%d input devices match %r, using the first: %s", len(matches), wanted, ", ".join(d.name for d in matches))
    if matches:
        return matches[0]
    want = f'input device whose name contains "{wanted}" ([audio] device)' if wanted else 'default input device ([audio] device = "")'
    seen = ", ".join(f'"{d.name}" ({d.max_input_channels} ch)' for d in devices)
    raise AudioDeviceNotFoundError(f"no {want}; " + (
        f"input devices seen: {seen}" if devices else "saw no input devices at all (mic array unplugged? USB array not enumerated? try arecord -l)"))


def _check_format(pa: pyaudio.PyAudio, device: InputDevice, channels: int, rate: int) -> None:
    offers = f'"{device.name}" offers up to {device.max_input_channels} input channel(s), default rate {device.default_sample_rate:g} Hz'
    if channels > device.max_input_channels:
        raise AudioFormatError(f"{offers}, but the config asks for {channels} channels ([audio] channels, or highest channel_map entry + 1, or one per mic)")
    try:
        pa.is_format_supported(rate, input_device=device.index, input_channels=channels, input_format=pyaudio.paInt16)
    except ValueError as err:  # PyAudio raises ValueError(text, code) for unsupported formats
        raise AudioFormatError(f"{offers} and refuses {channels} ch int16 at {rate} Hz ({err.args[0]}); set [audio] sample_rate_hz to a rate it supports") from err


class _Session(threading.Thread):
    """One opening of the device; all PortAudio calls for it happen in this thread."""

    def __init__(self, settings: AudioSettings, channels: int, frames: int) -> None:
        super().__init__(name="madoguchi-capture", daemon=True)  # a hung read must not block exit
        self.items: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self.stopping = threading.Event()
        self._settings, self._channels, self._frames = settings, channels, frames
        self._max_queued = max(1, int(QUEUE_S * settings.sample_rate_hz / frames))

    def run(self) -> None:
        pa: pyaudio.PyAudio | None = None
        stream: pyaudio.Stream | None = None
        dropped = 0
        try:
            with _PA_LOCK:
                pa = _new_pyaudio()
                device = _choose_device(pa, self._settings.device)
                _check_format(pa, device, self._channels, self._settings.sample_rate_hz)
                stream = pa.open(format=pyaudio.paInt16, channels=self._channels, rate=self._settings.sample_rate_hz, input=True,
                                 input_device_index=device.index, frames_per_buffer=self._frames)
            self.items.put(("opened", device))
            while not self.stopping.is_set():
                # An overflow means PortAudio already lost older audio; this block itself is good.
                data = stream.read(self._frames, exception_on_overflow=False)
                if self.items.qsize() < self._max_queued:
                    if dropped:
                        log.warning("the consumer caught up after %d capture blocks were dropped", dropped)
                    dropped = 0
                    self.items.put(("data", data))
                elif (dropped := dropped + 1) == 1:
                    log.warning("the consumer is slower than real time: dropping capture blocks")
        except Exception as err:  # noqa: BLE001  # handed to blocks(), which decides: config error, lost, or not back yet
            self.items.put(("error", err))
        finally:
            with _PA_LOCK:
                if stream is not None:
                    try:
                        stream.close()
                    except OSError as err:
                        log.debug("closing the capture stream: %s", err)
                if pa is not None:
                    pa.terminate()


class PyAudioSource(AudioSource):
    """The mic array through PortAudio: int16 capture, reduced to the mics, resampled to 16 kHz.

    ``on_state`` hears "capturing" (opened or back) and "mic_lost", from the thread running blocks().
    """

    def __init__(self, settings: AudioSettings, n_mics: int, on_state: Callable[[str], None] | None = None, *, stall_s: float = STALL_S) -> None:
        self.settings = settings
        self.channels = n_mics
        self.capture_channels = settings.channels or (max(settings.channel_map) + 1 if settings.channel_map else n_mics)
        self._frames = max(1, settings.sample_rate_hz * settings.block_ms // 1000)
        self.on_state = on_state
        self._stall_s = stall_s
        self._closed = threading.Event()
        self._session: _Session | None = None
        self._name = f'"{settings.device}"' if settings.device else "the default input device"  # the real name once open
        self._last_audio = 0.0

    def open(self) -> None:
        if self._session is not None:
            return
        self._closed.clear()
        self._last_audio = time.monotonic()  # the gap reference until the first block
        kind, payload = self._attempt()
        if kind in ("error", "timeout"):
            self._session = None  # so a later open() tries again
            if kind == "timeout":
                raise AudioSourceError(f"the audio system did not answer within {OPEN_TIMEOUT_S:g} s while opening {self._name} (ALSA/PulseAudio hung?)")
            if isinstance(payload, OSError) and not isinstance(payload, AudioSourceError):
                raise AudioSourceError(f"cannot open {self._name}: {payload}") from payload
            raise payload

    def close(self) -> None:
        self._closed.set()
        session, self._session = self._session, None
        if session is not None:
            session.stopping.set()
            session.join(CLOSE_JOIN_S)
            if session.is_alive():
                log.warning("PortAudio is still stuck in the capture device; leaving it behind")

    def blocks(self) -> Iterator[np.ndarray]:
        if self._session is None and not self._closed.is_set():  # closed before we got here: stay closed
            self.open()
        resample = StreamResampler(self.settings.sample_rate_hz, self.channels)
        while (session := self._session) is not None and not self._closed.is_set():
            kind, payload = self._next(session, self._stall_s)
            if kind == "data":
                self._last_audio = time.monotonic()
                raw = np.frombuffer(payload, dtype="<i2").reshape(-1, self.capture_channels)
                out = resample(select_channels(raw, self.settings.channel_map, self.channels).astype(np.float32) / 32768.0)
                if len(out):
                    yield out
            elif kind == "error" and not isinstance(payload, OSError):
                raise payload  # a bug, not a device problem
            elif kind != "closed" and not self._recover(session, payload):
                break

    def _attempt(self) -> _Item:
        """Start a session and wait for it to open: ("opened"|"error"|"timeout"|"closed", detail)."""
        session = self._session = _Session(self.settings, self.capture_channels, self._frames)
        session.start()
        kind, payload = self._next(session, OPEN_TIMEOUT_S)
        if kind == "opened":
            self._name = payload.name
            log.info("capturing from %s: %d ch int16 at %d Hz in %d ms blocks", payload.name, self.capture_channels,
                     self.settings.sample_rate_hz, self.settings.block_ms)
            self._state("capturing")
        else:
            session.stopping.set()
        return kind, payload

    def _next(self, session: _Session, timeout_s: float) -> _Item:
        """The session's next item; ("timeout", None) after ``timeout_s`` without one, ("closed", None) on close()."""
        deadline = time.monotonic() + timeout_s
        while not self._closed.is_set():
            try:
                return session.items.get(timeout=POLL_S)
            except queue.Empty:
                if time.monotonic() > deadline:
                    return "timeout", None
        return "closed", None

    def _recover(self, lost: _Session, reason: Exception | None) -> bool:
        """Report the loss and reopen every reopen_interval_s; False once closed."""
        lost.stopping.set()
        lost_at, name = time.monotonic(), self._name
        why = f"read failed: {reason}" if reason is not None else f"no audio for {self._stall_s:g} s"
        log.warning("mic_lost: %s stopped delivering audio (%s); retrying every %g s", name, why, self.settings.reopen_interval_s, extra={"code": "mic_lost"})
        self._state("mic_lost")
        last = ""
        while not self._closed.wait(self.settings.reopen_interval_s):
            previous = self._session
            if previous is not None and previous.is_alive():  # a new Pa_Initialize would not rescan yet
                if time.monotonic() - lost_at > WEDGED_S:
                    raise AudioDeviceLostError(f"{name}: PortAudio still hung {WEDGED_S:g} s after the device was lost; restart the service to reset it")
                problem = "PortAudio has not let go of the lost device yet"
            else:
                kind, payload = self._attempt()
                if kind == "opened":
                    log.info("mic back after %.1f s without audio; that audio is missing", time.monotonic() - self._last_audio)
                    return True
                if kind == "closed":
                    return False
                if kind == "error" and not isinstance(payload, (OSError, AudioSourceError)):
                    raise payload  # a bug, not a device problem
                problem = str(payload) if kind == "error" else f"no answer within {OPEN_TIMEOUT_S:g} s"
            if problem != last:  # once per distinct problem, not every retry
                log.warning("mic still missing: %s", problem, extra={"code": "mic_lost"})
            last = problem
        return False

    def _state(self, state: str) -> None:
        if self.on_state is not None:
            self.on_state(state)
