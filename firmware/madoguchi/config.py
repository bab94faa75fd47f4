"""Settings: one frozen dataclass per subsystem, loaded and validated from one TOML file.

Each field's ``metadata["allowed"]`` is a predicate plus the sentence shown when it fails, so
the allowed values are defined once, next to the default, and every error names the file, the
``[table] key`` and what is allowed. Cross-field rules (geometry, side azimuths) live in
``_check_*`` functions that report the same way.

Files are layered: defaults < ``/etc/madoguchi/madoguchi.toml`` < ``/boot/firmware/madoguchi.toml``
(so an admin can override a flashed image from the SD card's boot partition) < ``--config``.
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from madoguchi.errors import ConfigError, ConfigProblem
from madoguchi.geometry import check_geometry
from madoguchi.languages import DAY_ONE_RESIDENT, WHISPER
from madoguchi.pins import check_pins

SYSTEM_CONFIG = Path("/etc/madoguchi/madoguchi.toml")
BOOT_CONFIG = Path("/boot/firmware/madoguchi.toml")
PROCESSING_RATE_HZ = 16000  # Silero VAD and Whisper both want 16 kHz


def _allowed(check: Callable[[Any], bool], text: str) -> dict[str, Any]:
    return {"allowed": (check, text)}


def _between(lo: float, hi: float) -> dict[str, Any]:
    return _allowed(lambda v: lo <= v <= hi, f"a number from {lo:g} to {hi:g}")


_SQUARE_4MIC_32MM = tuple(
    (round(0.032 * math.cos(math.radians(a)), 6), round(0.032 * math.sin(math.radians(a)), 6), 0.0)
    for a in (0, 90, 180, 270)
)


@dataclass(frozen=True)
class ArraySettings:
    """Mic geometry in metres in the array's own frame, in captured channel order."""

    mic_positions_m: tuple[tuple[float, float, float], ...] = _SQUARE_4MIC_32MM
    speed_of_sound_m_s: float = field(default=343.0, metadata=_between(300.0, 400.0))

    @property
    def n_mics(self) -> int:
        return len(self.mic_positions_m)


@dataclass(frozen=True)
class AudioSettings:
    """Live capture. Replay ignores everything here but ``channel_map``."""

    device: str = ""  # substring of the input device name; "" = the default input device
    sample_rate_hz: int = field(default=16000, metadata=_between(8000, 192000))
    channels: int = field(default=0, metadata=_between(0, 32))  # 0 = one per mic
    channel_map: tuple[int, ...] = ()  # captured channel of each mic, in geometry order; () = 0..N-1
    block_ms: int = field(default=32, metadata=_between(8, 500))
    reopen_interval_s: float = field(default=2.0, metadata=_between(0.1, 60.0))


@dataclass(frozen=True)
class VadSettings:
    """Silero VAD thresholds and the endpointer's timing (all in ms of audio, never wall time)."""

    speech_threshold: float = field(default=0.5, metadata=_between(0.05, 0.99))
    silence_threshold: float = field(default=0.35, metadata=_between(0.01, 0.99))
    min_speech_ms: int = field(default=64, metadata=_between(0, 2000))
    hangover_ms: int = field(default=800, metadata=_between(32, 3000))  # silence that ends an utterance
    early_asr_ms: int = field(default=320, metadata=_between(32, 3000))  # silence that starts ASR early (dropped if the talker goes on)
    pre_roll_ms: int = field(default=256, metadata=_between(0, 2000))
    min_utterance_ms: int = field(default=160, metadata=_between(0, 5000))
    max_utterance_s: float = field(default=20.0, metadata=_between(1.0, 120.0))
    energy_gate_db: float = field(default=3.0, metadata=_between(0.0, 40.0))
    hold_gate_db: float = field(default=3.0, metadata=_between(-20.0, 40.0))
    turn_change_ms: int = field(default=224, metadata=_between(64, 2000))


BEAM_METHODS = ("das", "mvdr", "wpe+das", "wpe+mvdr")


@dataclass(frozen=True)
class BeamSettings:
    """How the talker's audio is taken from the array for ASR (README, "How the front end works")."""

    method: str = field(default="mvdr", metadata=_allowed(lambda v: v in BEAM_METHODS, "das (delay-and-sum), mvdr (nulls toward the room's noise), "
                                                                                     "wpe+das or wpe+mvdr (dereverberated first)"))


@dataclass(frozen=True)
class SidesSettings:
    """Where each side sits, seen from the array: degrees CCW from the array's +x axis."""

    staff_azimuth_deg: float = field(default=270.0, metadata=_between(-360.0, 360.0))
    resident_azimuth_deg: float = field(default=90.0, metadata=_between(-360.0, 360.0))
    max_offset_deg: float = field(default=70.0, metadata=_between(10.0, 90.0))
    min_confidence: float = field(default=0.1, metadata=_between(0.0, 1.0))
    min_frequency_hz: float = field(default=200.0, metadata=_between(50.0, 2000.0))
    max_frequency_hz: float = field(default=6000.0, metadata=_between(1000.0, 8000.0))


_MQTT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_MQTT_NAME_TEXT = "1-64 letters, digits, '_', '.' or '-' (it becomes one MQTT topic level)"


@dataclass(frozen=True)
class MqttSettings:
    """Fleet telemetry. Off while ``host`` is empty; nothing spoken is sent unless share_transcripts."""

    host: str = ""
    port: int = field(default=8883, metadata=_between(1, 65535))
    tls: bool = True
    ca_file: str = ""  # "" = the system's CA store
    cert_file: str = ""  # client certificate (optional)
    key_file: str = ""
    username: str = ""
    password_file: str = ""  # a file holding the password, so the config itself holds no secret
    protocol: str = field(default="auto", metadata=_allowed(lambda v: v in ("auto", "5", "3.1.1"), "auto, 5 or 3.1.1 (auto: MQTT 5, falling back to 3.1.1)"))
    site: str = field(default="site", metadata=_allowed(lambda v: bool(_MQTT_NAME.fullmatch(v)), _MQTT_NAME_TEXT))
    box_id: str = field(default="", metadata=_allowed(lambda v: v == "" or bool(_MQTT_NAME.fullmatch(v)), _MQTT_NAME_TEXT + ", or empty for the host name"))
    keepalive_s: int = field(default=30, metadata=_between(5, 600))
    reconnect_max_s: int = field(default=60, metadata=_between(1, 3600))  # back-off between 1 s and this
    health_interval_s: float = field(default=60.0, metadata=_between(5.0, 86400.0))
    share_transcripts: bool = False
    spool_path: str = "/var/lib/madoguchi/spool.sqlite3"
    spool_max_mb: float = field(default=50.0, metadata=_between(1.0, 10000.0))
    spool_max_age_days: float = field(default=30.0, metadata=_between(0.01, 3650.0))

    @property
    def enabled(self) -> bool:
        return bool(self.host)


@dataclass(frozen=True)
class PathsSettings:
    """Where the box keeps what it writes: the fleet's config layer, glossaries, the spool."""

    state_dir: str = "/var/lib/madoguchi"

    @property
    def fleet_config(self) -> Path:
        """Keys set remotely (``cmd/set_config``): the last layer, so the latest intent wins."""
        return Path(self.state_dir) / "fleet.toml"


def _whisper_language(code: str) -> bool:
    return code in WHISPER


_LANGUAGE_TEXT = "an ISO 639-1 code Whisper knows, e.g. ja, en, zh, ko, vi, pt, es, tl, ne, id, th, my"


@dataclass(frozen=True)
class LanguageSettings:
    """Who speaks what: the staff language is fixed; the resident's is identified among ``residents``."""

    staff: str = field(default="ja", metadata=_allowed(_whisper_language, _LANGUAGE_TEXT))
    residents: tuple[str, ...] = field(
        default=DAY_ONE_RESIDENT,
        metadata=_allowed(lambda v: 0 < len(v) <= 20 and all(map(_whisper_language, v)) and len(set(v)) == len(v), f"1 to 20 distinct codes, each {_LANGUAGE_TEXT}"),
    )
    # The site's language mix as prior weights, one per entry of ``residents`` (() = equal): a
    # city hall with many Vietnamese residents should not need much evidence to hear Vietnamese.
    resident_weights: tuple[float, ...] = field(default=(), metadata=_allowed(lambda v: all(w > 0 for w in v), "positive numbers, one per entry of residents"))


ASR_BACKENDS = ("whisper.cpp", "faster-whisper")
DEFAULT_ASR_MODELS = {"whisper.cpp": "whisper-base-ggml-q8_0", "faster-whisper": "whisper-base-ct2"}


@dataclass(frozen=True)
class AsrSettings:
    """Speech recognition: which engine and model, and how hard to try on short utterances."""

    backend: str = field(default="whisper.cpp", metadata=_allowed(lambda v: v in ASR_BACKENDS, " or ".join(ASR_BACKENDS)))
    model: str = ""  # a model id from models/manifest.toml; "" = Whisper base for the backend
    threads: int = field(default=2, metadata=_between(1, 16))
    window: str = field(default="fitted", metadata=_allowed(lambda v: v in ("fitted", "full"), "fitted (encoder context sized to the utterance) or full (Whisper's 30 s window)"))
    window_margin_s: float = field(default=1.0, metadata=_between(0.0, 30.0))  # silence the encoder sees after the speech
    window_min_s: float = field(default=10.0, metadata=_between(0.0, 30.0))  # shorter contexts change words (see README, Measured)
    beam_size: int = field(default=1, metadata=_between(1, 8))
    vocabulary_prompt: bool = True  # the site glossary's terms as Whisper's prompt: the site's spelling of its words
    vocabulary_terms: int = field(default=10, metadata=_between(1, 60))  # how many of them, the glossary's first
    no_speech_threshold: float = field(default=0.6, metadata=_between(0.0, 1.0))
    logprob_threshold: float = field(default=-1.0, metadata=_between(-10.0, 0.0))
    compression_ratio_threshold: float = field(default=2.4, metadata=_between(1.0, 10.0))
    partials: bool = True  # live captions of a still-open utterance, only while the CPU is free
    partial_interval_s: float = field(default=1.0, metadata=_between(0.2, 10.0))

    @property
    def model_id(self) -> str:
        return self.model or DEFAULT_ASR_MODELS[self.backend]


@dataclass(frozen=True)
class MtSettings:
    """Translation: phrasebook and glossary first, then CTranslate2 models from the model store."""

    models: tuple[str, ...] = ()  # model ids from models/manifest.toml; () = phrasebook and glossary only
    threads: int = field(default=2, metadata=_between(1, 16))
    beam_size: int = field(default=1, metadata=_between(1, 8))
    pivot: str = field(default="en", metadata=_allowed(_whisper_language, _LANGUAGE_TEXT))
    phrasebook: bool = True
    glossary: bool = True


MODES = ("interpret", "caption", "easy_japanese")
DISPLAY_DRIVERS = {"ssd1322": (256, 64), "ssd1306": (128, 64), "sh1106": (128, 64), "ssd1351": (128, 128), "dummy": (256, 64), "none": (256, 64)}
_PIN = _allowed(lambda v: -1 <= v <= 27, "a BCM GPIO number from 0 to 27, or -1 when not fitted")


@dataclass(frozen=True)
class DisplaySettings:
    """The two faces: SPI OLED panels driven by luma.oled (CE0 faces the staff, CE1 the resident)."""

    driver: str = field(default="ssd1322", metadata=_allowed(lambda v: v in DISPLAY_DRIVERS, ", ".join(DISPLAY_DRIVERS) + " (dummy: render without a panel; none: no displays)"))
    width: int = field(default=0, metadata=_between(0, 512))  # 0 = the driver's panel size
    height: int = field(default=0, metadata=_between(0, 512))
    spi_port: int = field(default=0, metadata=_between(0, 6))
    spi_speed_hz: int = field(default=8_000_000, metadata=_between(500_000, 32_000_000))
    staff_spi_device: int = field(default=0, metadata=_between(0, 2))  # chip select: CE0
    resident_spi_device: int = field(default=1, metadata=_between(0, 2))  # CE1
    staff_dc_pin: int = field(default=24, metadata=_PIN)
    staff_rst_pin: int = field(default=25, metadata=_PIN)
    resident_dc_pin: int = field(default=23, metadata=_PIN)
    resident_rst_pin: int = field(default=22, metadata=_PIN)
    staff_rotate: int = field(default=0, metadata=_allowed(lambda v: v in (0, 1, 2, 3), "0, 1, 2 or 3 quarter turns clockwise"))
    resident_rotate: int = field(default=0, metadata=_allowed(lambda v: v in (0, 1, 2, 3), "0, 1, 2 or 3 quarter turns clockwise"))
    brightness: float = field(default=0.8, metadata=_between(0.0, 1.0))
    clear_after_s: float = field(default=60.0, metadata=_between(5.0, 3600.0))  # words leave the faces after this long without speech (privacy); then the greeting
    idle_sleep_s: float = field(default=600.0, metadata=_between(0.0, 86400.0))  # then the panels switch off (OLEDs age); 0 = never
    greeting_interval_s: float = field(default=3.0, metadata=_between(0.5, 60.0))
    frames_per_s: float = field(default=10.0, metadata=_between(1.0, 60.0))
    mode: str = field(default="interpret", metadata=_allowed(lambda v: v in MODES, ", ".join(MODES) + " (the mode at start; the mode button cycles them)"))
    echo: bool = True  # a small line of the face's own speaker's last words, so they see they were understood


@dataclass(frozen=True)
class ControlsSettings:
    """Buttons (to ground, internal pull-up) and LEDs through gpiozero; -1 = not fitted.

    Defaults are hw/pinmap.toml's (a test keeps the two equal)."""

    enabled: bool = True
    language_pin: int = field(default=5, metadata=_PIN)  # press: next resident language; hold: the list
    swap_pin: int = field(default=6, metadata=_PIN)
    mode_pin: int = field(default=13, metadata=_PIN)
    mute_pin: int = field(default=16, metadata=_PIN)
    operator_pin: int = field(default=17, metadata=_PIN)
    staff_led_pin: int = field(default=4, metadata=_PIN)
    resident_led_pin: int = field(default=27, metadata=_PIN)
    status_led_pin: int = field(default=12, metadata=_PIN)
    bounce_s: float = field(default=0.05, metadata=_between(0.0, 1.0))
    hold_s: float = field(default=1.0, metadata=_between(0.2, 10.0))


@dataclass(frozen=True)
class EasyJapaneseSettings:
    """やさしい日本語 for residents who read some Japanese (the easy_japanese mode)."""

    reading_above_grade: int = field(default=2, metadata=_between(0, 8))  # kana after kanji words above this school grade (7: secondary jōyō, 8: beyond jōyō)
    max_sentence_chars: int = field(default=30, metadata=_between(10, 80))
    readings: str = field(default="after", metadata=_allowed(lambda v: v in ("after", "none"), "after (かな in brackets after the word) or none"))
    spaces: bool = True  # 分かち書き: a space between phrases


SESSION_STARTS = ("speech", "button", "wake_phrase")


@dataclass(frozen=True)
class SessionSettings:
    """Privacy mode. ``speech``: the box interprets whenever someone speaks (no privacy mode).
    ``button`` or ``wake_phrase``: nothing is transcribed or kept until a session starts, with the
    clerk's mute button or the spoken wake phrase; it ends after ``idle_s`` without speech (or with
    the button), and the box is closed again."""

    start: str = field(default="speech", metadata=_allowed(lambda v: v in SESSION_STARTS, f"one of {', '.join(SESSION_STARTS)}"))
    idle_s: float = field(default=60.0, metadata=_between(5.0, 3600.0))
    wake_model: str = "wake-tsuuyaku"  # the wake phrase head: a folder in the model store (README "Privacy mode": how a site makes it)
    wake_threshold: float = field(default=0.0, metadata=_between(0.0, 0.99))  # 0: the threshold the head was tuned for (in wake.npz)

    @property
    def private(self) -> bool:
        return self.start != "speech"


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class LogSettings:
    level: str = field(default="INFO", metadata=_allowed(lambda v: v in _LOG_LEVELS, f"one of {', '.join(_LOG_LEVELS)}"))


@dataclass(frozen=True)
class Settings:
    """The whole configuration: one frozen dataclass per TOML table."""

    array: ArraySettings = ArraySettings()
    audio: AudioSettings = AudioSettings()
    vad: VadSettings = VadSettings()
    sides: SidesSettings = SidesSettings()
    beam: BeamSettings = BeamSettings()
    languages: LanguageSettings = LanguageSettings()
    asr: AsrSettings = AsrSettings()
    mt: MtSettings = MtSettings()
    display: DisplaySettings = DisplaySettings()
    controls: ControlsSettings = ControlsSettings()
    easy_japanese: EasyJapaneseSettings = EasyJapaneseSettings()
    session: SessionSettings = SessionSettings()
    mqtt: MqttSettings = MqttSettings()
    paths: PathsSettings = PathsSettings()
    log: LogSettings = LogSettings()
    sources: tuple[str, ...] = ()  # the files this was loaded from, in layering order

    def digest(self) -> str:
        """A short hash of the effective settings (for status reports and caches)."""
        return hashlib.sha256(repr(self.__class__(**{**self.__dict__, "sources": ()})).encode()).hexdigest()[:12]


_TABLES: dict[str, type] = {
    name: hint for name, hint in typing.get_type_hints(Settings).items() if name != "sources"
}


def _coerce(value: Any, annotation: Any) -> Any:
    """Convert a TOML value to the annotated type or raise ValueError saying what was expected."""
    origin = typing.get_origin(annotation)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ValueError("expected true or false")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValueError("expected a whole number")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise ValueError("expected a number")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ValueError("expected a string in quotes")
    if origin is tuple:
        args = typing.get_args(annotation)
        if not isinstance(value, list):
            raise ValueError("expected a list [ ... ]")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0]) for v in value)
        if len(value) != len(args):
            raise ValueError(f"expected a list of {len(args)} values")
        return tuple(_coerce(v, a) for v, a in zip(value, args))
    raise TypeError(f"unsupported setting type {annotation!r}")  # a programming error, not user input


def _describe(annotation: Any) -> str:
    if annotation == tuple[tuple[float, float, float], ...]:
        return "a list of [x, y, z] positions in metres"
    if annotation == tuple[int, ...]:
        return "a list of whole numbers"
    if annotation == tuple[float, ...]:
        return "a list of numbers"
    if annotation == tuple[str, ...]:
        return "a list of strings"
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}[annotation]


def _parse_table(cls: type, table: str, raw: Any, origin: dict[str, str], problems: list[ConfigProblem]) -> dict[str, Any]:
    """Validate one TOML table against its dataclass; returns the accepted values."""
    if not isinstance(raw, dict):
        problems.append(ConfigProblem(origin.get(table, "?"), f"[{table}]", "expected a table"))
        return {}
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    accepted: dict[str, Any] = {}
    for key, value in raw.items():
        where = origin.get(f"{table}.{key}", "?")
        if key not in known:
            problems.append(ConfigProblem(where, f"[{table}] {key}", f"unknown key; allowed keys: {', '.join(known)}"))
            continue
        try:
            coerced = _coerce(value, hints[key])
        except ValueError as err:
            problems.append(ConfigProblem(where, f"[{table}] {key}", f"{err}, got {value!r}; allowed: {_describe(hints[key])}"))
            continue
        check = known[key].metadata.get("allowed")
        if check and not check[0](coerced):
            problems.append(ConfigProblem(where, f"[{table}] {key}", f"{value!r} is not allowed; allowed: {check[1]}"))
            continue
        accepted[key] = coerced
    return accepted


def _merge(layers: list[tuple[str, dict[str, Any]]]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Overlay TOML documents table by table, remembering which file set each key."""
    merged: dict[str, dict[str, Any]] = {}
    origin: dict[str, str] = {}
    for name, doc in layers:
        for table, body in doc.items():
            origin.setdefault(table, name)
            if isinstance(body, dict) and isinstance(merged.get(table, {}), dict):
                merged.setdefault(table, {}).update(body)
                for key in body:
                    origin[f"{table}.{key}"] = name
            else:
                merged[table] = body
                origin[table] = name
    return merged, origin


def read_toml(path: Path) -> dict[str, Any]:
    """Parse one TOML file; any failure is a ConfigError naming the file (and line if known)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError as err:
        raise ConfigError([ConfigProblem(str(path), "", "file not found")]) from err
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError([ConfigProblem(str(path), "", f"cannot read it as UTF-8 text: {err}")]) from err
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError([ConfigProblem(str(path), "", f"not valid TOML: {err}")]) from err


def _check_languages(settings: Settings) -> list[tuple[str, str, str]]:
    languages = settings.languages
    problems = []
    if languages.resident_weights and len(languages.resident_weights) != len(languages.residents):
        problems.append(("languages", "resident_weights", f"{len(languages.resident_weights)} weights for {len(languages.residents)} resident languages; allowed: one weight per entry of residents, or [] for equal weights"))
    if languages.staff in languages.residents:
        problems.append(("languages", "residents", f"{languages.staff!r} is the staff language; allowed: languages other than staff (caption mode serves residents who speak {languages.staff})"))
    if settings.mt.pivot == languages.staff:
        problems.append(("mt", "pivot", f"{settings.mt.pivot!r} is the staff language; allowed: a third language that models cover both ways (en)"))
    return problems


def settings_from_layers(layers: list[tuple[str, dict[str, Any]]]) -> Settings:
    """Build validated Settings from (name, parsed TOML) layers, lowest priority first."""
    merged, origin = _merge(layers)
    problems: list[ConfigProblem] = []
    tables: dict[str, Any] = {}
    for table, raw in merged.items():
        if table not in _TABLES:
            problems.append(ConfigProblem(origin[table], f"[{table}]", f"unknown table; allowed tables: {', '.join(_TABLES)}"))
            continue
        tables[table] = _TABLES[table](**_parse_table(_TABLES[table], table, raw, origin, problems))
    settings = Settings(**tables, sources=tuple(name for name, _ in layers))
    cross_checks = check_geometry(settings) + _check_languages(settings) + check_pins(settings)
    problems += [ConfigProblem(origin.get(f"{t}.{k}", origin.get(t, "defaults")), f"[{t}] {k}", m) for t, k, m in cross_checks]
    if problems:
        raise ConfigError(problems)
    return settings


def default_paths() -> list[Path]:
    return [p for p in (SYSTEM_CONFIG, BOOT_CONFIG) if p.is_file()]


def config_layers(explicit: Path | None = None, *, system_layers: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """The parsed files in priority order, lowest first, ending with the fleet layer if there is one."""
    paths = default_paths() if system_layers else []
    if explicit is not None:
        paths.append(explicit)
    layers = [(str(p), read_toml(p)) for p in paths]
    fleet = settings_from_layers(layers).paths.fleet_config  # where this box keeps remote settings
    if fleet.is_file():
        layers.append((str(fleet), read_toml(fleet)))
    return layers


def load_settings(explicit: Path | None = None, *, system_layers: bool = True) -> Settings:
    """Load the layered configuration: system files < ``--config`` < keys the fleet set remotely."""
    return settings_from_layers(config_layers(explicit, system_layers=system_layers))
