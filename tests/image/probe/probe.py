"""Test only (the stand-in base image; never in the product): the booted box's state, one JSON line.

Waits until madoguchi.service has settled (its STATUS says waiting_for_mic, or it failed), then
prints ``PROBE {json}`` and ``PROBE-DONE`` on stdout, which the unit sends to the serial console.
"""

import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path


def run(*command: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def unit(name: str) -> dict:
    props = "ActiveState,SubState,StatusText,NRestarts,ExecMainStatus,Result"
    out = run("systemctl", "show", name, "-p", props).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def lower_is_read_only() -> bool | None:
    lower = Path("/media/root-ro")
    if not lower.is_dir() or not os.path.ismount(lower):
        return None
    try:
        (lower / "probe-write-test").write_text("x")
    except OSError:
        return True
    (lower / "probe-write-test").unlink()
    return False


def spool_pending() -> int | None:
    path = Path("/var/lib/madoguchi/spool.sqlite3")
    if not path.exists():
        return None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return db.execute("SELECT COUNT(*) FROM items").fetchone()[0]


def main() -> None:
    started = time.monotonic()
    service = unit("madoguchi.service")
    while time.monotonic() - started < 900:
        service = unit("madoguchi.service")
        if "waiting_for_mic" in service.get("StatusText", "") or service.get("ActiveState") == "failed":
            break
        time.sleep(2)
    waited = round(time.monotonic() - started)
    time.sleep(5)  # the waiting_for_mic event reaches the spool
    doctor = run("/usr/local/bin/madoguchi", "doctor", "--json", "--listen", "0")
    try:
        doctor_json = json.loads(doctor.stdout)
    except ValueError:
        doctor_json = {"unparsed": doctor.stdout[-2000:], "stderr": doctor.stderr[-2000:]}
    etc = Path("/etc/madoguchi")
    report = {
        "hostname": Path("/etc/hostname").read_text().strip(),
        "root_fstype": run("findmnt", "-n", "-o", "FSTYPE", "/").stdout.strip(),
        "lower_read_only": lower_is_read_only(),
        "firstboot": unit("madoguchi-firstboot.service"),
        "firstboot_done": Path("/etc/madoguchi/.firstboot-done").exists(),
        "service": service,
        "service_waited_s": waited,
        "service_enabled": run("systemctl", "is-enabled", "madoguchi.service").stdout.strip(),
        "ssh_enabled": run("systemctl", "is-enabled", "ssh.service").stdout.strip(),
        "etc_madoguchi": {p.name: oct(p.stat().st_mode & 0o777) for p in sorted(etc.iterdir())} if etc.is_dir() else {},
        "boot_files": sorted(p.name for p in Path("/boot/firmware").iterdir()),
        "data_mb": run("lsblk", "-b", "-n", "-o", "SIZE", run("findmnt", "-n", "-o", "SOURCE", "/var/lib/madoguchi").stdout.strip()).stdout.strip(),
        "spool_pending": spool_pending(),
        # qemu-user cannot import it (build-image.sh leaves it out); a real arm64 kernel can.
        "onnxruntime": run("/opt/madoguchi/venv/bin/python", "-c", "import onnxruntime; print(onnxruntime.__version__)").stdout.strip(),
        "journal_service": run("journalctl", "-b", "-u", "madoguchi.service", "-u", "madoguchi-firstboot.service", "--no-pager", "-o", "cat").stdout[-3000:],
        "doctor": doctor_json,
    }
    print("PROBE " + json.dumps(report), flush=True)
    print("PROBE-DONE", flush=True)


if __name__ == "__main__":
    main()
