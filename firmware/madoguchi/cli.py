"""The ``madoguchi`` command. Each subcommand is a thin shell over a module that does the work.

Errors the firmware raises on purpose (``MadoguchiError``) are printed as one line naming what
was wrong and what is allowed, with a non-zero exit; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from madoguchi import __version__
from madoguchi.config import Settings, config_layers, load_settings, read_toml, settings_from_layers
from madoguchi.errors import ConfigError, MadoguchiError

log = logging.getLogger(__name__)

STAGES = ("all", "frontend")  # replay/demo --stages: the whole pipeline, or side detection only

EXIT_ERROR = 1
EXIT_CONFIG = 2
# Packages of the optional extras (pyproject.toml): a command that needs one that is missing says what to install.
OPTIONAL_PACKAGES = {"matplotlib": ("matplotlib", "admin"), "faster_whisper": ("faster-whisper", "faster-whisper"), "nara_wpe": ("nara-wpe", "dereverb")}


def _load(args: argparse.Namespace) -> tuple[Settings, list]:
    """The effective settings and the parsed config layers they came from."""
    layers = config_layers(args.config, system_layers=not args.no_system_config)
    settings = settings_from_layers(layers)
    if not args.verbose:
        logging.getLogger().setLevel(settings.log.level)
    return settings, layers


def _settings(args: argparse.Namespace) -> Settings:
    return _load(args)[0]


def _setup_logging(verbose: int) -> None:
    chosen = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=chosen, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def cmd_config_check(args: argparse.Namespace) -> int:
    settings = settings_from_layers([(str(args.file), read_toml(args.file))])
    print(f"{args.file}: ok ({settings.array.n_mics} mics, staff at {settings.sides.staff_azimuth_deg:g} deg, resident at {settings.sides.resident_azimuth_deg:g} deg, config {settings.digest()})")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from madoguchi.replay import run_replay

    settings, layers = _load(args)
    _check_frames(args)
    count = run_replay(settings, args.input, sys.stdout, args.json, args.realtime, layers, stages=args.stages, frames_dir=args.frames)
    log.info("%d utterances", count)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from importlib.resources import as_file, files

    from madoguchi.replay import run_replay

    _check_frames(args)
    demo = files("madoguchi") / "data" / "demo"
    with as_file(demo / "counter-demo.toml") as config, as_file(demo / "counter-demo.flac") as recording:
        settings = load_settings(config, system_layers=False)
        model_root = ensure_demo_models(settings) if args.stages != "frontend" else None  # side detection needs no model
        if not args.json:
            print(f"Replaying {recording.name}: a Japanese clerk and an English-speaking resident at a 4-mic array\n", flush=True)
        run_replay(settings, recording, sys.stdout, args.json, stages=args.stages, model_root=model_root, frames_dir=args.frames)
    return 0


def _check_frames(args: argparse.Namespace) -> None:
    if args.frames is not None and args.stages == "frontend":
        raise SystemExit("--frames needs the whole pipeline (the faces show words): drop --stages frontend")


def ensure_demo_models(settings: Settings) -> Path:
    """The demo fetches Whisper base on first use (with progress), into a store this user can write."""
    from madoguchi.models.errors import ModelMissingError
    from madoguchi.models.fetch import fetch_model
    from madoguchi.models.store import ModelStore, writable_root

    root = writable_root()
    store = ModelStore.open(root)
    model_id = settings.asr.model_id
    try:
        store.verify(model_id)
    except ModelMissingError:
        print(f"First run: fetching {model_id} into {root} (about 150 MB, once)", file=sys.stderr, flush=True)
        fetch_model(store, model_id)
    return root


def cmd_calibrate(args: argparse.Namespace) -> int:
    from madoguchi import calibrate

    settings = _settings(args)
    wide = calibrate.open_sectors(settings)
    if args.live:
        events = {side: calibrate.listen_live(wide, side, args.live) for side in ("staff", "resident")}
    else:
        events = {"staff": calibrate.listen(wide, args.staff), "resident": calibrate.listen(wide, args.resident)}
    staff_estimate = calibrate.side_azimuth("staff", events["staff"])
    resident_estimate = calibrate.side_azimuth("resident", events["resident"])
    staff, resident = staff_estimate.azimuth_deg, resident_estimate.azimuth_deg
    calibrate.calibrated(settings, staff, resident)  # validates: sides must not coincide
    for side, estimate in (("staff", staff_estimate), ("resident", resident_estimate)):
        if estimate.other_voices:
            heard = ", ".join(f"{az:.0f} deg {s:.1f} s" for az, s in estimate.other_voices)
            log.warning("%s: %.1f s of speech from %.0f deg; ignored as other voices: %s", side, estimate.speech_s, estimate.azimuth_deg, heard)
        if estimate.share < calibrate.MIN_SHARE:
            log.warning("%s: only %.0f %% of the speech came from %.0f deg: was the %s side speaking, or someone louder nearby? "
                        "Repeat it in a quieter moment", side, 100 * estimate.share, estimate.azimuth_deg, side)
    print(calibrate.sides_table(staff, resident), end="")
    if args.write:
        calibrate.write_sides(args.write, staff, resident)
        print(f"# written to {args.write}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from madoguchi.app.parts import build_interpreter, build_wake, recording_source
    from madoguchi.audio.capture import PyAudioSource
    from madoguchi.daemon import serve
    from madoguchi.sdnotify import SystemdNotifier

    settings, layers = _load(args)
    notifier = SystemdNotifier()
    if args.replay:
        source = recording_source(settings, args.replay, realtime=True)
    else:
        source = PyAudioSource(settings.audio, settings.array.n_mics)
    wake = build_wake(settings)
    interpreter = None if args.stages == "frontend" else build_interpreter(settings)  # models load before READY
    try:
        asyncio.run(serve(settings, source, sys.stdout, notifier, wait_for_device=args.wait_for_mic, layers=layers, interpreter=interpreter, wake=wake))
    finally:
        if interpreter is not None:
            interpreter.close()
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from madoguchi.audio.capture import list_input_devices

    devices = list_input_devices()
    if not devices:
        print("no input devices (is the mic array plugged in?)")
    for device in devices:
        print(f"{device.index:3d}  {device.name}  ({device.max_input_channels} ch, {device.default_sample_rate:g} Hz)")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from madoguchi import doctor

    settings, layers, problem = None, [], None
    try:
        settings, layers = _load(args)
    except ConfigError as err:  # a broken config is the doctor's first finding, not its end
        problem = err
    if not args.verbose:
        logging.getLogger().setLevel(logging.ERROR)  # the table says everything; no INFO lines around it
    checks = doctor.run_checks(settings, layers, config_error=problem, listen_s=args.listen)
    print(doctor.as_json(checks, settings, layers) if args.json else doctor.format_table(checks))
    return doctor.exit_code(checks)


def cmd_fleet_status(args: argparse.Namespace) -> int:
    from madoguchi.fleet.commands import run_status

    run_status(_settings(args).mqtt, sys.stdout, site=args.site)
    return 0


def cmd_fleet_collect(args: argparse.Namespace) -> int:
    from madoguchi.fleet.commands import run_collect

    print(run_collect(_settings(args).mqtt, args.db, args.for_s, args.drain, site=args.site))
    return 0


def cmd_fleet_report(args: argparse.Namespace) -> int:
    from madoguchi.fleet.commands import require_report_tools, run_collect, run_report

    require_report_tools()  # before collecting: say what is missing first
    if args.collect:
        print(run_collect(_settings(args).mqtt, args.db, drain=True, site=args.site))
    print(run_report(args.since, args.out, args.db))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from madoguchi.models import cli as models
    from madoguchi.models.store import store_root

    where = {"models_dir": store_root(_settings(args).paths.state_dir)}
    action = args.models_command
    if action == "list":
        return models.models_list(**where)
    if action == "fetch":
        return models.models_fetch(args.ids, accept_licence=args.accept_licence, assets=args.assets, **where)
    if action == "verify":
        return models.models_verify(args.ids, **where)
    if action == "import":
        return models.models_import(args.id, args.folder, accept_licence=args.accept_licence, **where)
    if action == "convert":
        return models.models_convert(args.ids, assets=args.assets, **where)
    return models.models_lock(args.ids, **where)


def _models_parsers(sub: argparse._SubParsersAction, with_config) -> None:
    models = sub.add_parser("models", help="the model manager: list, fetch, verify, import, convert, lock").add_subparsers(dest="models_command", required=True)
    with_config(models.add_parser("list", help="every model in the manifest, its licence and whether it is here")).set_defaults(func=cmd_models)
    fetch = with_config(models.add_parser("fetch", help="download (with resume) and verify against the lock"))
    fetch.add_argument("ids", nargs="+")
    fetch.add_argument("--accept-licence", action="store_true", help="allow a model whose licence forbids commercial use (NLLB)")
    fetch.add_argument("--assets", type=Path, help="the openai-whisper sdist, for converting to ggml")
    fetch.set_defaults(func=cmd_models)
    verify = with_config(models.add_parser("verify", help="check every file's size and sha256 (all models present if none named)"))
    verify.add_argument("ids", nargs="*")
    verify.set_defaults(func=cmd_models)
    imp = with_config(models.add_parser("import", help="copy a model from a folder or USB stick (offline sites)"))
    imp.add_argument("id")
    imp.add_argument("folder", type=Path)
    imp.add_argument("--accept-licence", action="store_true")
    imp.set_defaults(func=cmd_models)
    convert = with_config(models.add_parser("convert", help="build ggml models for whisper.cpp from the CTranslate2 Whisper"))
    convert.add_argument("ids", nargs="+")
    convert.add_argument("--assets", type=Path, help="the openai-whisper sdist (mel filters, vocabulary)")
    convert.set_defaults(func=cmd_models)
    lock = with_config(models.add_parser("lock", help="record the sha256 of models that are here"))
    lock.add_argument("ids", nargs="+")
    lock.set_defaults(func=cmd_models)


def _fleet_parsers(sub: argparse._SubParsersAction, with_config) -> None:
    fleet = sub.add_parser("fleet", help="admin tools: watch and report on every box over MQTT").add_subparsers(dest="fleet_command", required=True)
    status = with_config(fleet.add_parser("status", help="table of boxes: online, last seen, version, temperature, last error"))
    status.add_argument("--site", help="only this site")
    status.set_defaults(func=cmd_fleet_status)
    collect = with_config(fleet.add_parser("collect", help="store usage and events in a local database (persistent session: nothing missed)"))
    collect.add_argument("--db", type=Path, help="default ~/.local/share/madoguchi/fleet.sqlite3")
    collect.add_argument("--site", help="only this site")
    how = collect.add_mutually_exclusive_group()
    how.add_argument("--for", dest="for_s", type=float, metavar="SECONDS", help="stop after this long")
    how.add_argument("--drain", action="store_true", help="take what the broker kept for us, then stop")
    collect.set_defaults(func=cmd_fleet_collect)
    report = with_config(fleet.add_parser("report", help="usage per language per hour and day, latency: PNG plots and an HTML page"))
    report.add_argument("--since", default="7d", help="how far back: 7d, 12h, 30m")
    report.add_argument("--out", type=Path, required=True, help="folder for index.html and the PNGs")
    report.add_argument("--db", type=Path, help="default ~/.local/share/madoguchi/fleet.sqlite3")
    report.add_argument("--site", help="only this site (with --collect)")
    report.add_argument("--collect", action="store_true", help="drain the broker's queue into the database first")
    report.set_defaults(func=cmd_fleet_report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="madoguchi", description="Offline counter interpreter box.")
    parser.add_argument("--version", action="version", version=f"madoguchi {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", type=Path, help="TOML config; overrides /etc/madoguchi/madoguchi.toml and /boot/firmware/madoguchi.toml")
        p.add_argument("--no-system-config", action="store_true", help="ignore the system config files (use only --config and defaults)")
        return p

    config = sub.add_parser("config", help="configuration tools").add_subparsers(dest="config_command", required=True)
    check = config.add_parser("check", help="validate a config file")
    check.add_argument("file", type=Path)
    check.set_defaults(func=cmd_config_check)

    replay = with_config(sub.add_parser("replay", help="run the pipeline on a multichannel recording"))
    replay.add_argument("input", type=Path, help="recording with one channel per mic (WAV, FLAC)")
    replay.add_argument("--json", action="store_true", help="one JSON object per utterance")
    replay.add_argument("--stages", choices=STAGES, default="all", help="frontend: stop after side detection (no models); all: ASR and translation too")
    replay.add_argument("--realtime", action="store_true", help="pace the recording like live audio")
    replay.add_argument("--frames", type=Path, metavar="DIR", help="write every frame of both faces as PNG, and a contact sheet, to DIR")
    replay.set_defaults(func=cmd_replay)

    demo = sub.add_parser("demo", help="replay the bundled counter conversation (no hardware needed)")
    demo.add_argument("--json", action="store_true", help="one JSON object per utterance")
    demo.add_argument("--stages", choices=STAGES, default="all", help="frontend: side detection only (no models needed)")
    demo.add_argument("--frames", type=Path, metavar="DIR", help="write every frame of both faces as PNG, and a contact sheet, to DIR")
    demo.set_defaults(func=cmd_demo)

    cal = with_config(sub.add_parser("calibrate", help="learn the staff and resident azimuths"))
    how = cal.add_mutually_exclusive_group(required=True)
    how.add_argument("--live", type=float, metavar="SECONDS", help="capture each side speaking for SECONDS from the mic array")
    how.add_argument("--staff", type=Path, help="recording of the staff side speaking (needs --resident)")
    cal.add_argument("--resident", type=Path, help="recording of the resident side speaking")
    cal.add_argument("--write", type=Path, metavar="CONFIG", help="store the result in this config file")
    cal.set_defaults(func=cmd_calibrate)

    run = with_config(sub.add_parser("run", help="run the box (live capture; systemd service)"))
    run.add_argument("--replay", type=Path, help="feed a recording, paced like live audio, instead of the mic array")
    run.add_argument("--wait-for-mic", action="store_true", help="if the mic array is missing, wait for it (status: waiting_for_mic) instead of failing")
    run.add_argument("--stages", choices=STAGES, default="all", help="frontend: side detection only (no models needed)")
    run.set_defaults(func=cmd_run)

    devices = sub.add_parser("devices", help="list audio input devices")
    devices.set_defaults(func=cmd_devices)
    doctor = with_config(sub.add_parser("doctor", help="check the box: mic array, panels, models, broker, clock, disk, temperature; exit 1 if anything failed"))
    doctor.add_argument("--json", action="store_true", help="one JSON document: every check, and the effective config with the file that set each key")
    doctor.add_argument("--listen", type=float, default=2.0, metavar="SECONDS", help="live audio to judge each mic channel (speak or clap meanwhile); 0: do not listen")
    doctor.set_defaults(func=cmd_doctor)
    _fleet_parsers(sub, with_config)
    _models_parsers(sub, with_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "staff", None) and not getattr(args, "resident", None):
        parser.error("--staff needs --resident")
    _setup_logging(args.verbose)
    try:
        return args.func(args)
    except ConfigError as err:
        for problem in err.problems:
            print(f"madoguchi: config error: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except MadoguchiError as err:
        print(f"madoguchi: error [{err.code}]: {err}", file=sys.stderr)
        return EXIT_ERROR
    except ModuleNotFoundError as err:  # an optional extra that is not installed is no bug: one line, no traceback
        package, extra = OPTIONAL_PACKAGES.get((err.name or "").partition(".")[0], (None, None))
        if package is None:
            raise
        print(f"madoguchi: error [missing_extra]: {args.command} needs {package}, which is not installed ({err}): pip install 'madoguchi[{extra}]'", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `madoguchi demo | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
