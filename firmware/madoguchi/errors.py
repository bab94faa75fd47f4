"""One exception class per failure, each with a stable ``code`` for logs, status and MQTT.

Classes inherit the built-in that fits (``ValueError`` for bad input, ``LookupError`` for a
missing device, ``OSError`` for I/O) so callers that know nothing of Madoguchi can still catch
them sensibly. The CLI prints ``str(err)`` as one line and exits non-zero: messages must say
what was wrong and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass


class MadoguchiError(Exception):
    """Base of every error the firmware raises on purpose."""

    code = "error"


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in a config file: where, which key, and what is allowed."""

    file: str
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        return f"{where}: {self.message}"


class ConfigError(MadoguchiError, ValueError):
    """The configuration is invalid; ``problems`` lists every problem found, not just the first."""

    code = "config_invalid"

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class AudioSourceError(MadoguchiError):
    """Audio could not be read."""

    code = "audio_error"


class AudioFormatError(AudioSourceError, ValueError):
    """The audio exists but is not what the pipeline can use (not audio, wrong channel count)."""

    code = "audio_format"


class AudioDeviceNotFoundError(AudioSourceError, LookupError):
    """No capture device matches the configured name."""

    code = "mic_not_found"


class AudioDeviceLostError(AudioSourceError, OSError):
    """The capture device went away while in use (unplugged USB array)."""

    code = "mic_lost"


class VadModelError(MadoguchiError, OSError):
    """The voice-activity model could not be loaded."""

    code = "vad_model"


class CalibrationError(MadoguchiError, ValueError):
    """Calibration recordings did not give a usable direction for a side."""

    code = "calibration_failed"
