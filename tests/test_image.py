"""The SD image, built by build-image.sh from a Debian arm64 stand-in for Pi OS, inspected, then
booted in qemu-system-aarch64 as an admin's box would be: provisioned from its boot partition,
the service up and waiting for its mic, the root read-only from the second boot, the spool
surviving a power cut.

Slow (a cold machine: the base image ~8 min, the aarch64 wheelhouse ~25 min, both cached; the
build ~6 min and two emulated boots ~10 min every run). Needs root and what `.ci/setup --test`
installs (debootstrap, qemu-user-static with binfmt_misc, qemu-system-arm, mtools).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests import image

ROOT = Path(__file__).resolve().parents[1]
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"
BOX_ID = "kuyakusho-03"
PASSWORD = "s3cret-for-kuyakusho-03"

SITE = """\
# The site's config, the same on every box.
[mqtt]
host = "broker.invalid"   # no network in the emulator: everything the box reports waits in its spool
site = "testcity"
"""


def normalized(name: str) -> str:
    """A distribution name as PEP 503 compares them (luma.core, luma_core and Luma-Core are one)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installable_on_the_image(wheel: str) -> bool:
    """A wheel's tags (name-version[-build]-python-abi-platform.whl) fit CPython 3.11 on aarch64 Linux."""
    python, abi, platform = wheel[:-len(".whl")].split("-")[-3:]
    pythons = python.split(".")
    if abi == "none":
        python_ok = any(p in ("py3", "cp311") for p in pythons)
    elif abi == "abi3":
        python_ok = any(p.startswith("cp3") and int(p[3:]) <= 11 for p in pythons)
    else:
        python_ok = abi == "cp311" and "cp311" in pythons
    return python_ok and (platform == "any" or all(p.endswith("_aarch64") for p in platform.split(".")))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, speech_store) -> dict[str, Path]:
    if os.geteuid() != 0:
        pytest.fail("the image tests need root (loop devices, mounts, chroot): run the suite as root, as CI does")
    if image.missing_tools():
        pytest.fail(f"missing {', '.join(image.missing_tools())}: {image.APT}")
    if not image.binfmt_ready():
        pytest.fail("aarch64 binaries cannot run here: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc && /usr/lib/systemd/systemd-binfmt")
    base = image.base_image()
    work = tmp_path_factory.mktemp("image")
    site = work / "site.toml"
    site.write_text(SITE, encoding="utf-8")
    models = work / "models"
    shutil.copytree(speech_store.folder("whisper-base-ggml-q8_0"), models / "whisper-base-ggml-q8_0")
    out = work / "madoguchi.img.xz"
    result = subprocess.run(["bash", str(ROOT / "build-image.sh"), "--base", str(base), "--out", str(out), "--config", str(site),
                             "--models", str(models), "--keep-img", "--xz-level", "0"],
                            capture_output=True, text=True, check=False, cwd=ROOT, env={**os.environ, "PYTHON": sys.executable})
    (work / "build.log").write_text(result.stdout + result.stderr, encoding="utf-8")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    print(result.stdout)
    return {"xz": out, "img": work / "madoguchi.img", "manifest": work / "madoguchi.manifest.json", "work": work, "log": work / "build.log"}


def test_the_image_is_what_its_manifest_says(built: dict[str, Path]) -> None:
    xz, img = built["xz"], built["img"]
    recorded = (xz.parent / (xz.name + ".sha256")).read_text().split()
    assert recorded == [hashlib.sha256(xz.read_bytes()).hexdigest(), xz.name]
    manifest = json.loads(built["manifest"].read_text())
    with image.mounted(img, 2) as root:
        inside = json.loads((root / "usr/share/madoguchi/image-manifest.json").read_text())
        assert inside == manifest
        venv_site = next((root / "opt/madoguchi/venv/lib").glob("python3.*/site-packages"))
        installed = {normalized(p.name.split("-")[0]) for p in venv_site.glob("*.dist-info")}
        assert (root / "etc/systemd/system/multi-user.target.wants/madoguchi.service").is_symlink()
        assert "LABEL=madodata" in (root / "etc/fstab").read_text()
    assert manifest["firmware"]["version"] and re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", manifest["firmware"]["commit"])
    assert manifest["os"] == {"suite": "bookworm", "python": "3.11", "architecture": "arm64"}
    wheels = manifest["wheels"]
    assert wheels and all(installable_on_the_image(w["file"]) for w in wheels), [w["file"] for w in wheels if not installable_on_the_image(w["file"])]
    assert {normalized(w["name"]) for w in wheels} <= installed | {"pip", "setuptools", "wheel"}
    assert {"madoguchi", "numpy", "ctranslate2", "pywhispercpp", "pyicu", "pyaudio", "lgpio", "spidev"} <= {w["name"].lower() for w in wheels}
    assert all(len(w["sha256"]) == 64 and w["licence"] for w in wheels)
    debs = {d["package"]: d for d in manifest["debs"]}
    assert {"libportaudio2", "overlayroot", "fonts-noto-cjk"} <= set(debs) and all(d["architecture"] in ("arm64", "all") for d in debs.values())
    lock = tomllib.loads((ROOT / "models/manifest.lock").read_text())
    whisper = next(m for m in manifest["models"] if m["id"] == "whisper-base-ggml-q8_0")
    assert {f["path"]: f["sha256"] for f in whisper["files"]} == {name: entry["sha256"] for name, entry in lock["whisper-base-ggml-q8_0"].items()}
    assert whisper["licence"] == "MIT"
    assert image.read_boot_file(img, "madoguchi.toml").decode() == SITE
    assert "madoguchi-box.toml.example" in image.boot_files(img)


def test_madoguchi_runs_in_an_arm64_chroot_of_the_image(built: dict[str, Path]) -> None:
    with image.mounted(built["img"], 2) as root:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/root", "QEMU_CPU": "cortex-a76", "LANG": "C.UTF-8"}
        version = subprocess.run([CHROOT, str(root), "/usr/local/bin/madoguchi", "--version"], capture_output=True, text=True, env=env, check=False)
        assert version.returncode == 0 and version.stdout.startswith("madoguchi "), version
        arch = subprocess.run([CHROOT, str(root), "/usr/bin/dpkg", "--print-architecture"], capture_output=True, text=True, env=env, check=True)
        assert arch.stdout.strip() == "arm64"


def test_the_box_boots_provisions_and_survives_a_power_cut(built: dict[str, Path]) -> None:
    img, work = built["img"], built["work"]
    box = f'box_id = "{BOX_ID}"\nmqtt_password = "{PASSWORD}"\n'
    image.write_boot_file(img, "madoguchi-box.toml", box.encode())
    with open(img, "r+b") as f:  # a bigger card than the image: the data partition takes the rest
        f.truncate(img.stat().st_size + 512 * 1024 * 1024)
    kernel, initrd = image.kernel_and_initrd(img, work)
    console = work / "console.log"

    first = image.boot(img, kernel, initrd, timeout_s=1500, log=console)
    report = first.report
    assert report is not None, "no report from the first boot; console tail:\n" + "\n".join(first.console[-60:])
    print(f"first boot: probe after {first.seconds:.0f} s; the service settled {report['service_waited_s']} s after the probe started")
    assert report["firstboot"]["Result"] == "success" and report["firstboot_done"], report["journal_service"]
    service = report["service"]
    assert service["ActiveState"] == "active" and "waiting_for_mic" in service["StatusText"], (service, report["journal_service"])
    assert report["hostname"] == BOX_ID
    assert report["root_fstype"] == "ext4" and report["lower_read_only"] is None, "the first boot runs on the writable root"
    secrets = {name: mode for name, mode in report["etc_madoguchi"].items() if "pass" in name}
    assert secrets and set(secrets.values()) == {"0o600"}, report["etc_madoguchi"]
    assert "madoguchi-box.toml" not in report["boot_files"] or PASSWORD not in image.read_boot_file(img, "madoguchi-box.toml").decode()
    assert report["ssh_enabled"] != "enabled"
    assert int(report["data_mb"]) > (512 + 256) * 1024 * 1024, "the data partition grew into the rest of the card"
    doctor = {c["name"]: c for c in report["doctor"]["checks"]}
    assert doctor["capture device"]["status"] == "fail" and doctor["model whisper-base-ggml-q8_0"]["status"] == "ok", report["doctor"]
    assert report["onnxruntime"], "the wake phrase's ONNX runtime imports on the box's CPU"
    spooled = report["spool_pending"]
    assert spooled and spooled >= 1, "the box's waiting_for_mic event waits in the spool for the broker"

    second = image.boot(img, kernel, initrd, timeout_s=1200, log=console)
    report = second.report
    assert report is not None, "no report from the second boot; console tail:\n" + "\n".join(second.console[-60:])
    print(f"second boot (after a power cut): probe after {second.seconds:.0f} s")
    assert report["root_fstype"] == "overlay" and report["lower_read_only"] is True, "the root is read-only from the second boot"
    assert report["service"]["ActiveState"] == "active" and "waiting_for_mic" in report["service"]["StatusText"]
    assert report["hostname"] == BOX_ID and report["firstboot"]["ActiveState"] == "inactive"
    assert report["spool_pending"] > spooled, "what the box spooled before the power cut is still there, and this boot's too"


def test_an_admin_updates_the_venv_in_maintenance_mode(built: dict[str, Path], tmp_path: Path) -> None:
    """`madoguchi-maintenance` in an arm64 chroot of the image (a writable root, as after `on`):
    status, a newer madoguchi wheel into the venv, then `off` locks the root for the next boot.
    Runs last: it changes the image the other tests booted."""
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(".git", ".venv", "reports", "*.egg-info", "build", "__pycache__"))
    init = checkout / "firmware/madoguchi/__init__.py"
    init.write_text(re.sub(r'__version__ = "[^"]+"', '__version__ = "99.0.0"', init.read_text()))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(checkout)], check=True)
    with image.mounted(built["img"], 2, read_only=False) as root, image.mounted(built["img"], 3, read_only=False) as data:
        drop = data / "update"
        shutil.copytree(wheels, drop)
        subprocess.run(["mount", "--bind", str(data), str(root / "var/lib/madoguchi")], check=True)
        for sub in ("proc", "dev"):
            subprocess.run(["mount", "--bind", f"/{sub}", str(root / sub)], check=True)
        try:
            env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "QEMU_CPU": "cortex-a76",
                   "LANG": "C.UTF-8", "MADOGUCHI_NO_REBOOT": "1"}

            def maintenance(*args: str) -> subprocess.CompletedProcess[str]:
                return subprocess.run([CHROOT, str(root), "/usr/local/sbin/madoguchi-maintenance", *args], capture_output=True, text=True, env=env,
                                      check=False, timeout=900)

            status = maintenance("status")
            assert status.returncode == 0 and "root now: writable" in status.stdout, status
            update = maintenance("update", "/var/lib/madoguchi/update")
            assert update.returncode == 0 and "now madoguchi 99.0.0" in update.stdout, update
            off = maintenance("off")
            assert off.returncode == 0 and "reboot to apply" in off.stdout, off
            assert 'overlayroot="tmpfs:' in (root / "etc/overlayroot.local.conf").read_text()
            assert "next boot: read-only" in maintenance("status").stdout
            refused = maintenance("update", "/nonexistent")
            assert refused.returncode == 1 and refused.stderr.startswith("madoguchi-maintenance: update needs a folder of wheels"), refused
        finally:
            for sub in ("dev", "proc", "var/lib/madoguchi"):
                subprocess.run(["umount", str(root / sub)], check=True)
