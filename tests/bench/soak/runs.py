"""The soak's runs: the box as a service with every sink against a real mosquitto, then the two
peers (the front end with the same sinks, and alone) on the first minutes of the same recording."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.soak.analysis import usage_counts
from tests.bench.soak.recording import Plan, Recording
from tests.bench.soak.service import BOOTSTRAP, Run, start_child, watch, write_config

SITE, BOX = "soak", "bench-01"


def run_services(rec: Recording, plan: Plan, plain: bool, out: Path) -> tuple[Run, dict[str, Run], dict[str, int]]:
    """The main run and its peers, watched to the end; their logs are copied into ``out``.
    Returns the main run, the peers by name, and the messages counted at the broker."""
    from tests.asr_assets import speech_model_store
    from tests.mqtt_broker import Broker  # a real mosquitto: TLS, a box login, the shipped ACL

    wall_start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    broker = Broker(work / "broker")
    broker.start()
    login = broker.add_box(SITE, BOX)
    watcher = broker.subscriber(f"madoguchi/v1/{SITE}/{BOX}/#")
    try:
        def mqtt(box: str, box_login) -> dict[str, object]:
            return {"host": broker.host, "port": broker.port, "tls": True, "ca_file": str(broker.ca_file), "username": box_login.username,
                    "password_file": str(box_login.password_file), "site": SITE, "box_id": box, "spool_path": str(work / f"{box}-spool.sqlite3")}

        (work / "state").mkdir()
        sinks = {"display": {"driver": "dummy"}, "paths": {"state_dir": str(work / "state")}}
        config = write_config(work / "soak.toml", {"mqtt": mqtt(BOX, login), **sinks})
        peer_sinks_config = write_config(work / "peer-sinks.toml", {"mqtt": mqtt(f"{BOX}-peer", broker.add_box(SITE, f"{BOX}-peer")), **sinks})
        alone_config = write_config(work / "peer-alone.toml", {"display": {"driver": "none"}, "controls": {"enabled": False}, "paths": {"state_dir": str(work / "state")}})

        # Whisper base from the tests' model store (fetched and checked against the lock once).
        env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "MADOGUCHI_MODELS_DIR": str(speech_model_store().root)}
        launcher = [sys.executable, "-m", "madoguchi"] if plain else [sys.executable, "-c", BOOTSTRAP]
        common = ["run", "--no-system-config", "--replay", str(rec.wav)]

        main_run = Run("main", [*launcher, *common, "--config", str(config)])
        print(f"main run: madoguchi {' '.join(main_run.command[len(launcher):])}", flush=True)
        child = start_child(main_run, env, work)
        # A backlog of turns may outlast the recording (ASR on a busy machine), but not by this much.
        watch([(main_run, child)], {}, give_up_after_s=rec.timeline["duration_s"] + max(300.0, 0.5 * rec.timeline["duration_s"]))
        main_done = time.monotonic()
        watcher_wait_until = time.monotonic() + 10.0
        while time.monotonic() < watcher_wait_until:  # the spool drains after the child says goodbye; give stragglers a moment
            if usage_counts(watcher.messages).get("usage:utterance", 0) >= len(main_run.finals):
                break
            time.sleep(0.5)
        usage = usage_counts(watcher.messages)

        peers = {
            "frontend+sinks": Run("peer-sinks", [*launcher, *common, "--stages", "frontend", "--config", str(peer_sinks_config)]),
            "frontend alone": Run("peer-alone", [*launcher, *common, "--stages", "frontend", "--config", str(alone_config)]),
        }
        print(f"main run done in {(main_done - wall_start) / 60:.1f} min; peers for {plan.peer_s:.0f} s of audio, side by side", flush=True)
        if main_run.t0 is not None:  # no peers for a service that never started
            started = [(run, start_child(run, env, work)) for run in peers.values()]
            watch(started, {run.name: plan.peer_s for run in peers.values()}, give_up_after_s=plan.peer_s + 120.0)
    finally:
        watcher.close()
        broker.stop()
    for run in (main_run, *peers.values()):  # the services' logs go with the report
        if run.notify is not None:
            run.notify.close()
        if run.stderr_file and run.stderr_file.is_file():
            shutil.copyfile(run.stderr_file, out / run.stderr_file.name)
            run.stderr_file = out / run.stderr_file.name
    shutil.rmtree(work, ignore_errors=True)
    return main_run, peers, usage
