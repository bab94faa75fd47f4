"""Every command works after the README's set-up (no extras) or says in one line what to install.

The README's ``.ci/setup`` installs the package without its extras: no matplotlib (``admin``), no
faster-whisper. Each command runs here as a user would run it, in a fresh interpreter in which those
packages cannot be imported (None in ``sys.modules`` raises exactly the ModuleNotFoundError of a
package that is not installed), and must never end in a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile

from madoguchi.cli import build_parser
from madoguchi.fleet.collect import FleetStore
from tests.fleet_records import NOW, utterance

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "firmware" / "madoguchi" / "data" / "demo"
EXTRAS = "matplotlib,faster_whisper,nara_wpe"  # the packages of the admin, faster-whisper and dereverb extras
BLOCK = ("import sys, runpy; [sys.modules.__setitem__(m, None) for m in sys.argv.pop(1).split(',')]; "
         "sys.argv[0] = 'madoguchi'; runpy.run_module('madoguchi', run_name='__main__')")


def madoguchi_without(packages: str, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``madoguchi ARGS`` in a fresh interpreter where ``packages`` (comma-separated) cannot be imported."""
    return subprocess.run([sys.executable, "-c", BLOCK, packages, *args], capture_output=True, check=False, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})})


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """A failure must be one line of ours (log lines before it are fine), never a traceback."""
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode != 0
    mine = [line for line in result.stderr.splitlines() if line.startswith("madoguchi:")]
    assert len(mine) == 1, result.stderr
    return mine[0]


def test_fleet_report_without_matplotlib_says_what_to_install_in_one_line(tmp_path: Path) -> None:
    with FleetStore(tmp_path / "fleet.sqlite3") as store:
        store.add("s", "b", "usage", utterance(1, NOW))
        store.commit()
    result = madoguchi_without("matplotlib", "fleet", "report", "--no-system-config", "--since", "1d", "--db", str(tmp_path / "fleet.sqlite3"), "--out", str(tmp_path / "out"))
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    line = one_line_error(result)
    assert "[missing_extra]" in line and "madoguchi[admin]" in line
    assert not (tmp_path / "out" / "index.html").exists()
    # --collect: the missing package is said first, before the broker is even looked for
    result = madoguchi_without("matplotlib", "fleet", "report", "--no-system-config", "--collect", "--since", "1d", "--out", str(tmp_path / "out"))
    assert "madoguchi[admin]" in one_line_error(result) and len(result.stderr.strip().splitlines()) == 1


def test_every_command_runs_or_says_in_one_line_what_is_wrong_without_the_extras(tmp_path: Path) -> None:
    """Each subcommand that ``madoguchi --help`` lists, as after ``.ci/setup``."""
    parser = build_parser()
    listed = set(next(a for a in parser._actions if a.dest == "command").choices)
    short = tmp_path / "three-seconds.flac"
    audio, rate = soundfile.read(DEMO / "counter-demo.flac", dtype="float32")
    soundfile.write(short, audio[: 3 * rate], rate)
    db = tmp_path / "fleet.sqlite3"
    runs = {
        "config": (["config", "check", str(DEMO / "counter-demo.toml")], True),
        "replay": (["replay", "--no-system-config", "--config", str(DEMO / "counter-demo.toml"), "--stages", "frontend", str(short)], True),
        "demo": (["demo", "--stages", "frontend"], True),
        "calibrate": (["calibrate", "--no-system-config", "--config", str(DEMO / "counter-demo.toml"), "--staff", str(short), "--resident", str(short)], False),
        "run": (["run", "--no-system-config", "--config", str(DEMO / "counter-demo.toml"), "--stages", "frontend", "--replay", str(short)], True),
        "devices": (["devices"], True),
        "fleet": (["fleet", "status", "--no-system-config"], False),  # no broker configured: a one-line error
        "models": (["models", "list", "--no-system-config"], True),
        "doctor": (["doctor", "--no-system-config", "--listen", "0"], None),  # its own report: a table, exit 0 or 1
    }
    assert set(runs) == listed, f"a command was added: run it here too ({listed - set(runs)})"
    for name, (args, succeeds) in runs.items():
        result = madoguchi_without(EXTRAS, *args, env={"XDG_DATA_HOME": str(tmp_path)})
        if succeeds is None:
            assert result.returncode in (0, 1) and "Traceback" not in result.stderr and result.stdout.splitlines()[-1].endswith("skipped"), (name, result.stderr[-3000:])
        elif succeeds:
            assert result.returncode == 0 and "Traceback" not in result.stderr, (name, result.stderr[-3000:])
        else:
            one_line_error(result)
    for args in (["fleet", "collect", "--no-system-config", "--drain", "--db", str(db)], ["fleet", "report", "--no-system-config", "--db", str(db), "--out", str(tmp_path / "r")]):
        one_line_error(madoguchi_without(EXTRAS, *args))


def test_the_faster_whisper_backend_without_its_extra_says_what_to_install(tmp_path: Path, speech_store) -> None:
    """The model is there, the package is not: ``replay`` and ``run`` name the extra in one line."""
    config = tmp_path / "fw.toml"
    config.write_text('[asr]\nbackend = "faster-whisper"\n\n' + (DEMO / "counter-demo.toml").read_text())
    env = {"MADOGUCHI_MODELS_DIR": str(speech_store.root)}
    for args in (["replay", "--no-system-config", "--config", str(config), str(DEMO / "counter-demo.flac")],
                 ["run", "--no-system-config", "--config", str(config), "--replay", str(DEMO / "counter-demo.flac")]):
        line = one_line_error(madoguchi_without("faster_whisper", *args, env=env))
        assert "[missing_extra]" in line and "madoguchi[faster-whisper]" in line, line


def test_dereverberation_without_its_extra_says_what_to_install(tmp_path: Path) -> None:
    """``[beam] method = "wpe+mvdr"`` needs nara-wpe: said at start, in one line, not at the first utterance."""
    config = tmp_path / "wpe.toml"
    config.write_text('[beam]\nmethod = "wpe+mvdr"\n\n' + (DEMO / "counter-demo.toml").read_text())
    line = one_line_error(madoguchi_without("nara_wpe", "replay", "--no-system-config", "--config", str(config), "--stages", "frontend", str(DEMO / "counter-demo.flac")))
    assert "[missing_extra]" in line and "madoguchi[dereverb]" in line, line


@pytest.mark.parametrize("package", ["matplotlib", "faster_whisper", "nara_wpe"])
def test_blocking_gives_the_error_of_a_missing_package(package: str) -> None:
    """The harness: None in sys.modules raises ModuleNotFoundError naming the package, as when it is not installed."""
    result = subprocess.run([sys.executable, "-c", f"import sys; sys.modules[{package!r}] = None\ntry:\n    import {package}\nexcept ModuleNotFoundError as e:\n    print(e.name)"],
                            capture_output=True, check=False, text=True, timeout=60)
    assert result.stdout.strip() == package
