"""``madoguchi doctor``: what is wrong with this box, one line per check, each failure with its fix.

:func:`run_checks` runs every check and returns ``Check`` lines (status ok, warn, fail or skip);
:func:`format_table` prints them for an admin, :func:`as_json` for the fleet, :func:`exit_code`
is 0 when nothing failed. A check that raises becomes a fail line with the exception's text.
Everything that touches hardware or the network goes through :class:`Probes`, so tests swap in
their own (a fake sysfs ``root``, a recorded block instead of the mic array).

The checks, in order: config; capture device, mic channels, mic channel order (``mics``);
sides; spi devices, gpio chip, panels, fonts, text shaping (``hardware``); asr engine, every
model, the VAD (``site``); the broker, step by step (``network``); clock, disk, spool,
temperature, throttling (``system``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from madoguchi import __version__
from madoguchi.config import Settings
from madoguchi.doctor import hardware, mics, network, site, system
from madoguchi.doctor.base import STATUSES, Check, guarded, skip
from madoguchi.doctor.mics import ChannelReport, analyse_channels
from madoguchi.doctor.site import effective_config
from madoguchi.errors import ConfigError

__all__ = ["ChannelReport", "Check", "Probes", "analyse_channels", "as_json", "effective_config", "exit_code", "format_table", "run_checks"]

DEFAULT_LISTEN_S = 2.0


@dataclass(frozen=True)
class Probes:
    """How the doctor reaches the world; the defaults are the real thing."""

    root: Path = Path("/")  # /dev and /sys are looked up under it
    scan_devices: Callable[[Settings], Any] = mics.scan_devices
    listen: Callable[[Settings, float], Any] = mics.listen  # -> channels × samples at 16 kHz
    open_panels: Callable[[Settings], dict[str, str]] = hardware.open_and_close_panels
    font_root: Path | None = None  # None: display.fonts.FONT_ROOT
    has_raqm: Callable[[], bool] | None = None
    model_store: Callable[[Settings], Any] = site.open_store
    clock: Callable[[], tuple[bool | None, str]] = system.clock_synced
    broker_timeout_s: float = network.TIMEOUT_S
    skip: frozenset[str] = field(default_factory=frozenset)  # groups not to run: mics, hardware, models, broker, system


def run_checks(settings: Settings | None, layers: list[tuple[str, dict[str, Any]]], *, config_error: ConfigError | None = None,
               listen_s: float = DEFAULT_LISTEN_S, probes: Probes = Probes()) -> list[Check]:
    """Every check, in table order. ``settings`` None (with ``config_error``): the config lines fail
    and the checks that need a valid config are skipped; the box's own checks still run."""
    checks = guarded("config", site.config_checks, settings, layers, config_error)
    if settings is None:
        reason = "the config is invalid (config line above)"
        checks += [skip(name, reason) for name in ("capture device", "mic channels", "sides", "panels", "models", "broker", "disk", "spool")]
        checks += guarded("clock", system.clock_check, probes.clock)
        return checks + guarded("temperature", system.thermal_checks, Settings(), probes.root)
    wanted = lambda group: group not in probes.skip
    if wanted("mics"):
        checks += guarded("capture device", mics.mic_checks, settings, listen_s, probes.scan_devices, probes.listen)
    checks += guarded("sides", site.sides_check, settings, layers)
    if wanted("hardware"):
        spi = guarded("spi devices", hardware.spi_check, settings, probes.root)
        checks += spi
        checks += guarded("gpio chip", hardware.gpio_check, settings, probes.root)
        checks += guarded("panels", hardware.panels_check, settings, probes.open_panels, spi[0])
        checks += guarded("fonts", hardware.font_checks, settings, probes.font_root, probes.has_raqm)
    if wanted("models"):
        checks += guarded("models", site.model_checks, settings, probes.model_store)
    if wanted("broker"):
        checks += guarded("broker", network.broker_checks, settings.mqtt, probes.broker_timeout_s)
    if wanted("system"):
        checks += guarded("clock", system.clock_check, probes.clock)
        checks += guarded("disk", system.disk_checks, settings)
        checks += guarded("spool", system.spool_check, settings)
        checks += guarded("temperature", system.thermal_checks, settings, probes.root)
    return checks


def exit_code(checks: list[Check]) -> int:
    """0 when no check failed, else 1."""
    return 1 if any(c.status == "fail" for c in checks) else 0


def _one_line(text: str) -> str:
    return " ".join(text.split())


def format_table(checks: list[Check]) -> str:
    """One line per check: status, name, what was found and, for warn and fail, ``fix:`` what to do."""
    width = max((len(c.name) for c in checks), default=0)
    lines = []
    for c in checks:
        line = f"{c.status:<4}  {c.name:<{width}}  {_one_line(c.detail)}"
        if c.status in ("warn", "fail"):
            line += f"  -> fix: {_one_line(c.fix)}"
        lines.append(line)
    counts = {s: sum(c.status == s for c in checks) for s in STATUSES}
    lines.append(f"{counts['ok']} ok, {counts['warn']} warn, {counts['fail']} fail, {counts['skip']} skipped")
    return "\n".join(lines)


def as_json(checks: list[Check], settings: Settings | None, layers: list[tuple[str, dict[str, Any]]]) -> str:
    """One JSON document: the checks, and the effective config with the file that set each key ("default" if none)."""
    document = {
        "version": __version__,
        "ok": exit_code(checks) == 0,
        "counts": {s: sum(c.status == s for c in checks) for s in STATUSES},
        "checks": [c.as_dict() for c in checks],
        "sources": [name for name, _ in layers],
        "config": None,
    }
    if settings is not None:
        try:
            document["config"] = effective_config(settings, layers)
        except Exception as err:  # noqa: BLE001 - the checks must still reach the fleet
            document["config"] = {"error": f"{type(err).__name__}: {err}"}
    return json.dumps(document, ensure_ascii=False, indent=1, default=str)
