"""The mic array: is the capture device there with enough channels, and is every mic alive?

:func:`analyse_channels` is pure (a block of channels × samples and the geometry in, a report
out), so it is tested on simulated rooms; :func:`listen` is the live part, through the same
``PyAudioSource`` the service captures with.

Channel order. Each pair of mics hears a single dominant sound (a voice, a clap) with a delay
that the array's geometry dictates: ``delay_ij = (p_j - p_i) · u / c`` for the direction ``u``.
GCC-PHAT measures the delays (to a tenth of a sample); a least-squares fit of one direction to
them leaves a small residual when the captured channels are in ``[array] mic_positions_m`` order
and a large one when two mics are swapped, unless the swap is a mirror or rotation of the array
(say the two ends of a 2-mic line, or opposite corners of a square): such a wiring only turns
every direction the same way, and ``madoguchi calibrate`` learns the sides in that frame, so it
does no harm and cannot be told from the sound. The verdict is "unknown" (the line is skipped)
when no single sound dominated while listening.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from madoguchi.config import PROCESSING_RATE_HZ, Settings
from madoguchi.doctor.base import SERVICE_STOP, Check, fail, ok, skip, split_fix, warn

FULL_SCALE = 32767 / 32768  # int16's largest sample as float
CLIP_LEVEL = 0.99  # |x| at or above this counts as clipped (resampling rounds a flat top a little)
CLIP_SHARE = 0.001  # clipped on more than 0.1 % of samples: the gain is too high
SILENT_PEAK = 1.5 / 32768  # a channel whose samples never leave ±1 LSB is digital silence
WEAK_DB = 20.0  # this far below the median of the other mics: a dead, blocked or disconnected mic
FRAME = 1024  # GCC-PHAT frame (64 ms at 16 kHz)
UPSAMPLE = 16  # delays to 1/16 sample
BAND_HZ = (200.0, 6000.0)  # where speech and claps have energy and the array does not alias much
MIN_COHERENCE = 0.2  # mean GCC-PHAT peak below this: no single dominant sound (diffuse noise, silence)
FIT_TOLERANCE = 0.35  # rms misfit (samples at 16 kHz) still taken as "fits": reverberation and noise
SWAP_MARGIN = 3.0  # the configured order must misfit this many times worse than the best order
MAX_ORDER_MICS = 7  # 7! = 5040 orders to try; more mics: not tested
SCAN_TIMEOUT_S = 10.0  # PortAudio lists devices in well under a second; longer means a stuck sound server


@dataclass(frozen=True)
class ChannelStats:
    """One mic's channel (in geometry order): level, peak, clipping and the verdict on it."""

    mic: int
    rms_dbfs: float  # -inf for digital silence
    peak: float
    clipped_share: float
    state: str  # ok | dead | weak | clipping


@dataclass(frozen=True)
class ChannelOrder:
    verdict: str  # ok | swapped | unknown
    detail: str
    channel_map: tuple[int, ...] = ()  # for "swapped": the [audio] channel_map whose delays fit
    misfit_samples: float | None = None  # rms misfit of the configured order
    coherence: float | None = None  # mean GCC-PHAT peak over the mic pairs, 0..1


@dataclass(frozen=True)
class ChannelReport:
    channels: tuple[ChannelStats, ...]
    order: ChannelOrder
    identical: tuple[tuple[int, int], ...] = ()  # pairs of mics whose samples are exactly the same


def _dbfs(rms: float) -> float:
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


def channel_stats(block: np.ndarray) -> list[ChannelStats]:
    """Level, peak and clipping of each row of ``block`` (channels × samples, float in [-1, 1])."""
    x = np.asarray(block, dtype=np.float64)
    rms = np.sqrt(np.mean(x * x, axis=1)) if x.shape[1] else np.zeros(len(x))
    peak = np.max(np.abs(x), axis=1) if x.shape[1] else np.zeros(len(x))
    clipped = np.mean(np.abs(x) >= CLIP_LEVEL * FULL_SCALE, axis=1) if x.shape[1] else np.zeros(len(x))
    levels = [_dbfs(float(r)) for r in rms]
    stats = []
    for mic in range(len(x)):
        others = [lv for i, lv in enumerate(levels) if i != mic and peak[i] > SILENT_PEAK]
        if peak[mic] <= SILENT_PEAK:
            state = "dead"
        elif others and levels[mic] < float(np.median(others)) - WEAK_DB:
            state = "weak"
        elif clipped[mic] > CLIP_SHARE:
            state = "clipping"
        else:
            state = "ok"
        stats.append(ChannelStats(mic, round(levels[mic], 1), round(float(peak[mic]), 4), round(float(clipped[mic]), 5), state))
    return stats


def _pair_delays(block: np.ndarray, sample_rate_hz: int, max_lag: float) -> tuple[np.ndarray, np.ndarray]:
    """GCC-PHAT delay (samples, ``x_i`` later than ``x_j`` is positive) and peak height for each pair i < j,
    searched within ``max_lag`` samples plus one."""
    n = block.shape[1]
    hop = FRAME // 2
    starts = np.arange(0, max(n - FRAME, 0) + 1, hop)
    frames = np.stack([block[:, s:s + FRAME] for s in starts], axis=1) * np.hanning(FRAME)  # (mics, frames, FRAME)
    energy = np.mean(frames ** 2, axis=(0, 2))
    loud = energy >= np.quantile(energy, 0.5)  # the louder half: the dominant sound, not the pauses
    spectra = np.fft.rfft(frames[:, loud], axis=2)
    freqs = np.fft.rfftfreq(FRAME, 1.0 / sample_rate_hz)
    band = (freqs >= BAND_HZ[0]) & (freqs <= min(BAND_HZ[1], 0.45 * sample_rate_hz))
    size = FRAME * UPSAMPLE
    reach = math.ceil((max_lag + 1.0) * UPSAMPLE)  # the physically possible lags, plus a sample
    lags = np.r_[0:reach + 1, -reach:0]
    pairs = list(itertools.combinations(range(len(block)), 2))
    delays, heights = np.zeros(len(pairs)), np.zeros(len(pairs))
    for k, (i, j) in enumerate(pairs):
        cross = spectra[i] * np.conj(spectra[j])
        cross = np.where(band, cross / np.maximum(np.abs(cross), 1e-20), 0.0).mean(axis=0)
        cc = np.fft.irfft(cross, n=size) * size / (2.0 * band.sum())
        values = cc[lags]
        best = int(np.argmax(values))
        delays[k] = lags[best] / UPSAMPLE
        heights[k] = values[best]
    return delays, heights


def _misfit(positions: np.ndarray, delays: np.ndarray, pairs: list[tuple[int, int]], slowness_limit: float) -> float:
    """Rms misfit (samples) of the best single far-field direction to the measured pair delays."""
    a = np.array([positions[j] - positions[i] for i, j in pairs])
    v, *_ = np.linalg.lstsq(a, delays, rcond=1e-9)
    speed = float(np.linalg.norm(v))
    if speed > slowness_limit:  # faster than sound across the array: no real direction; pull it back
        v = v * (slowness_limit / speed)
    return float(np.sqrt(np.mean((a @ v - delays) ** 2)))


def channel_order(block: np.ndarray, positions_m: Sequence[Sequence[float]], sample_rate_hz: int, speed_of_sound_m_s: float = 343.0,
                  channel_map: Sequence[int] = ()) -> ChannelOrder:
    """Whether the channels' delays fit the configured geometry (see the module docstring)."""
    pos = np.asarray(positions_m, dtype=float).reshape(-1, 3) * sample_rate_hz / speed_of_sound_m_s  # in samples of travel
    n_mics = len(pos)
    if n_mics < 3:
        return ChannelOrder("unknown", f"a {n_mics}-mic array has no wrong order a sound can show (a swap only mirrors every direction)")
    if n_mics > MAX_ORDER_MICS:
        return ChannelOrder("unknown", f"{n_mics} mics: too many channel orders to test")
    if block.shape[1] < 2 * FRAME:
        return ChannelOrder("unknown", f"only {block.shape[1]} samples heard; need at least {2 * FRAME}")
    pairs = list(itertools.combinations(range(n_mics), 2))
    aperture = max(float(np.linalg.norm(pos[i] - pos[j])) for i, j in pairs)  # in samples
    delays, heights = _pair_delays(np.asarray(block, dtype=np.float64), sample_rate_hz, aperture)
    coherence = float(np.mean(heights))
    if coherence < MIN_COHERENCE:
        return ChannelOrder("unknown", f"no single dominant sound while listening (coherence {coherence:.2f}, needs {MIN_COHERENCE:g}): "
                            "speak or clap on one side of the box during the check", coherence=round(coherence, 3))
    limit = 1.05  # |slowness| in samples per sample of travel: 1 is the speed of sound
    configured = _misfit(pos, delays, pairs, limit)
    fits = sorted(((_misfit(pos[list(order)], delays, pairs, limit), sum(o != i for i, o in enumerate(order)), order)
                   for order in itertools.permutations(range(n_mics))), key=lambda t: (round(t[0], 2), t[1]))
    best_misfit, _, best = fits[0]
    common = {"misfit_samples": round(configured, 3), "coherence": round(coherence, 3)}
    if configured <= FIT_TOLERANCE or (configured <= 1.2 * best_misfit and configured <= 2 * FIT_TOLERANCE):
        return ChannelOrder("ok", f"delays fit the configured mic positions (misfit {configured:.2f} samples, coherence {coherence:.2f})", **common)
    if best_misfit <= FIT_TOLERANCE and configured >= SWAP_MARGIN * max(best_misfit, 0.05):
        captured = list(channel_map) if channel_map else list(range(n_mics))
        # Row r carries the mic at position best[r]: the mic at position k is captured on captured[r].
        suggestion = tuple(captured[best.index(k)] for k in range(n_mics))
        return ChannelOrder("swapped", f"delays do not fit the configured mic positions (misfit {configured:.2f} samples) but fit "
                            f"channel_map = {list(suggestion)} (misfit {best_misfit:.2f}; or a rotation or mirror of it)", suggestion, **common)
    return ChannelOrder("unknown", f"delays fit no channel order well (misfit {configured:.2f} samples, best {best_misfit:.2f}): "
                        "reverberation or several sounds at once; repeat with one person speaking near the box", **common)


def analyse_channels(block: np.ndarray, positions_m: Sequence[Sequence[float]], sample_rate_hz: int = PROCESSING_RATE_HZ,
                     speed_of_sound_m_s: float = 343.0, channel_map: Sequence[int] = ()) -> ChannelReport:
    """Check every mic's channel in ``block`` (channels × samples, geometry order, float in [-1, 1]).

    ``channel_map`` is ``[audio] channel_map`` (how the rows were picked from the captured
    channels), used only to phrase a suggested fix for a swapped order.
    """
    block = np.asarray(block, dtype=np.float64)
    if block.ndim != 2 or len(block) != len(positions_m):
        raise ValueError(f"expected a block of {len(positions_m)} channels × samples, got shape {block.shape}")
    stats = tuple(channel_stats(block))
    live = [s.mic for s in stats if s.state not in ("dead", "weak")]
    identical = tuple((i, j) for i, j in itertools.combinations(live, 2) if np.array_equal(block[i], block[j]))
    if len(live) < len(stats):
        order = ChannelOrder("unknown", "not every mic is alive")
    elif identical:
        order = ChannelOrder("unknown", "some channels carry the same samples")
    else:
        order = channel_order(block, positions_m, sample_rate_hz, speed_of_sound_m_s, channel_map)
    return ChannelReport(stats, order, identical)


# --- the checks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceScan:
    """What PortAudio sees: every input device, and the one the config picks (None: no match, ``problem`` says why)."""

    devices: tuple
    chosen: object | None
    problem: str = ""
    stuck: bool = False  # the scan never answered


def scan_devices(settings: Settings, timeout_s: float = SCAN_TIMEOUT_S) -> DeviceScan:
    """The devices and the one ``PyAudioSource`` would open, chosen by the capture module's own rule.

    PortAudio's scan asks every ALSA device, including a sound server's (PulseAudio, PipeWire); a
    server that is stuck never answers and the scan would hang the doctor with it. The scan runs on
    a daemon thread: after ``timeout_s`` the answer is a DeviceScan whose problem says so.
    """
    result: list[DeviceScan] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(_scan(settings))
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            errors.append(err)

    worker = threading.Thread(target=run, name="madoguchi-doctor-scan", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if errors:
        raise errors[0]
    if not result:
        return DeviceScan((), None, f"the sound system did not list its devices in {timeout_s:g} s (a sound server such as PulseAudio "
                                    "or PipeWire that is stuck?)", stuck=True)
    return result[0]


def _scan(settings: Settings) -> DeviceScan:
    from madoguchi.audio import capture
    from madoguchi.errors import AudioDeviceNotFoundError

    with capture._PA_LOCK:  # the same scan and choice the service makes (and ALSA's chatter kept off the terminal)
        pa = capture._new_pyaudio()
        try:
            devices = tuple(capture.list_input_devices(pa))
            try:
                return DeviceScan(devices, capture._choose_device(pa, settings.audio.device))
            except AudioDeviceNotFoundError as err:
                return DeviceScan(devices, None, str(err))
        finally:
            pa.terminate()


def capture_channels(settings: Settings) -> int:
    audio = settings.audio
    return audio.channels or (max(audio.channel_map) + 1 if audio.channel_map else settings.array.n_mics)


def device_check(settings: Settings, scan: DeviceScan) -> Check:
    name = "capture device"
    wanted = capture_channels(settings)
    if scan.stuck:
        return fail(name, scan.problem, "restart the sound server (`systemctl --user restart pulseaudio`, or pipewire) or reboot the box; "
                                        "the service's capture waits on it too")
    if scan.chosen is None:
        fix = ("plug in the USB mic array (a powered port) and check `arecord -l` lists it; run the doctor as root or a member of the audio group"
               if not scan.devices else 'set [audio] device to part of one of these names (or "" for the default input)')
        return fail(name, scan.problem or "no input device", fix)
    device = scan.chosen
    found = f'"{device.name}" ({device.max_input_channels} ch, {device.default_sample_rate:g} Hz)'
    mics = settings.array.n_mics
    if device.max_input_channels < wanted:
        return fail(name, f"{found} but the config captures {wanted} channels for {mics} mics ([array] mic_positions_m, [audio] channels/channel_map)",
                    "set [array] mic_positions_m to this array's mics (hw/arrays/ has examples), or choose the array with [audio] device")
    if device.max_input_channels > wanted and not settings.audio.channel_map:
        return warn(name, f"{found}; the config captures only its first {wanted} channel(s), one per mic",
                    f"if the raw mics are not channels 0-{wanted - 1} (a ReSpeaker USB array puts them on 1-4), set [audio] channels = "
                    f"{device.max_input_channels} and channel_map to the mics' channels (see the array's hw/arrays/ example)")
    return ok(name, f"{found}, capturing {wanted} channel(s) for {mics} mics")


def listen(settings: Settings, seconds: float) -> np.ndarray:
    """``seconds`` of live audio from the configured device, as channels × samples at 16 kHz (geometry order).

    Raises the capture's own errors (device missing, busy, wrong format); a device that delivers
    nothing is an ``AudioSourceError`` after the capture's stall time.
    """
    from madoguchi.audio.capture import OPEN_TIMEOUT_S, STALL_S, PyAudioSource
    from madoguchi.errors import AudioSourceError

    source = PyAudioSource(settings.audio, settings.array.n_mics)
    need = int(seconds * PROCESSING_RATE_HZ)
    blocks: list[np.ndarray] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            got = 0
            for block in source.blocks():
                blocks.append(block)
                got += len(block)
                if got >= need:
                    break
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            errors.append(err)

    worker = threading.Thread(target=run, name="madoguchi-doctor-listen", daemon=True)
    worker.start()
    worker.join(seconds + OPEN_TIMEOUT_S + STALL_S + 1.0)
    source.close()  # ends a capture that went quiet (it would wait for the device to come back)
    worker.join(1.0)
    if errors:
        raise errors[0]
    got = sum(len(b) for b in blocks)
    if got < min(need, 2 * FRAME):
        raise AudioSourceError(f"only {got / PROCESSING_RATE_HZ:.2f} s of audio arrived in {seconds:g} s of listening; fix: "
                               "check `arecord -l` and that nothing else holds the device")
    return np.concatenate(blocks)[:need].T


def _listen_fix(err: BaseException) -> str:
    text = str(err)
    if "unavailable" in text.lower() or "busy" in text.lower():
        return f"the service holds the mic array while it runs: `{SERVICE_STOP}`, run the doctor, then start it again"
    return split_fix(text)[1] or "check the capture device line above and `arecord -l`"


def channel_checks(settings: Settings, block: np.ndarray, sample_rate_hz: int = PROCESSING_RATE_HZ) -> list[Check]:
    """The "mic channels" and "mic channel order" lines for one block of live (or recorded) audio."""
    report = analyse_channels(block, settings.array.mic_positions_m, sample_rate_hz, settings.array.speed_of_sound_m_s, settings.audio.channel_map)
    seconds = block.shape[1] / sample_rate_hz
    levels = "/".join("silent" if math.isinf(s.rms_dbfs) else f"{s.rms_dbfs:.0f}" for s in report.channels)
    heard = f"{seconds:.1f} s, levels {levels} dBFS"
    dead = [s for s in report.channels if s.state in ("dead", "weak")]
    clipping = [s for s in report.channels if s.state == "clipping"]
    lines = []
    if dead:
        what = "; ".join(f"mic {s.mic} " + ("is digital silence" if s.state == "dead" else f"is {s.rms_dbfs:.0f} dBFS, far below the others") for s in dead)
        everyone = len(dead) == len(report.channels)
        fix = ("unmute the capture in `alsamixer` (F6: the array, F4: capture) and check the array's USB cable" if everyone else
               "check that mic's port is not covered or taped over and its cable/ribbon is seated; if it stays dead the array needs repair")
        lines.append(fail("mic channels", f"{what} ({heard})", fix))
    elif report.identical:
        pairs = ", ".join(f"{i}={j}" for i, j in report.identical)
        lines.append(fail("mic channels", f"mics {pairs} carry identical samples ({heard}): the device copies one mic to several channels",
                          "capture the array's raw channels: set [audio] channels and channel_map as in its hw/arrays/ example, or use a multi-channel mode of the array"))
    elif clipping:
        what = ", ".join(f"mic {s.mic} {100 * s.clipped_share:.1f} %" for s in clipping)
        lines.append(warn("mic channels", f"clipping: {what} of samples at full scale ({heard})",
                          "lower the capture gain (`alsamixer`, F4) or the array's gain: speech should peak below -6 dBFS"))
    else:
        lines.append(ok("mic channels", f"{len(report.channels)} alive, no clipping ({heard})"))
    order = report.order
    if order.verdict == "ok":
        lines.append(ok("mic channel order", order.detail))
    elif order.verdict == "swapped":
        lines.append(warn("mic channel order", order.detail,
                          f"check the array's channel order against [array] mic_positions_m (its datasheet / hw/arrays/); if the wiring is right, "
                          f"set [audio] channel_map = {list(order.channel_map)}, then `madoguchi calibrate --live 10`"))
    else:
        lines.append(skip("mic channel order", order.detail))
    return lines


def mic_checks(settings: Settings, listen_s: float, scan_probe=scan_devices, listen_probe=listen) -> list[Check]:
    """capture device, mic channels, mic channel order."""
    scan = scan_probe(settings)
    lines = [device_check(settings, scan)]
    names = ("mic channels", "mic channel order")
    if lines[0].status == "fail":
        return lines + [skip(n, "no usable capture device (line above)") for n in names]
    if listen_s <= 0:
        return lines + [skip(n, "not listening (--listen 0)") for n in names]
    try:
        block = listen_probe(settings, listen_s)
    except Exception as err:  # noqa: BLE001 - the device's own words, as a line
        return lines + [fail("mic channels", f"cannot capture: {split_fix(str(err))[0]}", _listen_fix(err)), skip(names[1], "no audio")]
    return lines + channel_checks(settings, block)
