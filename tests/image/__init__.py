"""The SD image under test: a stand-in Pi OS base (base-image.sh), partitions and the emulator.

The base image is built once per content of its generator (the script, the probe, debootstrap's
version) and cached; building it and the product image needs root, qemu-user with binfmt_misc
and the tools ``.ci/setup --test`` installs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.cache import cache_dir, made_by, stable_hash

HERE = Path(__file__).resolve().parent
BASE_SCRIPT = HERE / "base-image.sh"
PROBE = (HERE / "probe" / "probe.py", HERE / "probe" / "madoguchi-test-probe.service")
SUITE = "bookworm"
TOOLS = ("debootstrap", "qemu-system-aarch64", "mkfs.vfat", "mcopy", "sfdisk", "mke2fs", "xz")
APT = "apt-get install debootstrap qemu-user-static qemu-system-arm dosfstools mtools fdisk e2fsprogs xz-utils"


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def binfmt_ready() -> bool:
    return Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists()


def base_image() -> Path:
    """The stand-in Pi OS Lite image (raw .img), from the cache or made now (~8 min)."""
    key = stable_hash({"suite": SUITE, "made_by": made_by([BASE_SCRIPT, *PROBE], tools=[("debootstrap", "--version")])})[:16]
    path = cache_dir("image") / f"base-{SUITE}-{key}.img"
    if not path.exists():
        started = time.monotonic()
        print(f"\nbuilding the stand-in base image {path.name} (debootstrap arm64, ~8 min; cached after)", flush=True)
        subprocess.run(["bash", str(BASE_SCRIPT), str(path)], check=True, env={**os.environ, "SUITE": SUITE})
        print(f"base image built in {time.monotonic() - started:.0f} s", flush=True)
    return path


@dataclass(frozen=True)
class Partition:
    number: int
    offset: int  # bytes
    size: int


def partitions(image: Path) -> dict[int, Partition]:
    table = json.loads(subprocess.run(["sfdisk", "-J", str(image)], capture_output=True, text=True, check=True).stdout)["partitiontable"]
    sector = table.get("sectorsize", 512)
    return {i + 1: Partition(i + 1, p["start"] * sector, p["size"] * sector) for i, p in enumerate(table["partitions"])}


@contextlib.contextmanager
def mounted(image: Path, number: int, *, read_only: bool = True) -> Iterator[Path]:
    """One partition of ``image`` mounted on a temporary folder (a loop device at its offset)."""
    part = partitions(image)[number]
    where = Path(tempfile.mkdtemp(prefix="madoguchi-mnt-"))
    options = f"loop,offset={part.offset},sizelimit={part.size}" + (",ro" if read_only else "")
    subprocess.run(["mount", "-o", options, str(image), str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)
        where.rmdir()


def boot_files(image: Path) -> list[str]:
    part = partitions(image)[1]
    out = subprocess.run(["mdir", "-b", "-i", f"{image}@@{part.offset}", "::/"], capture_output=True, text=True, check=True).stdout
    return sorted(line.rstrip("/").split("/")[-1] for line in out.splitlines() if line.strip())


def read_boot_file(image: Path, name: str) -> bytes:
    part = partitions(image)[1]
    return subprocess.run(["mtype", "-i", f"{image}@@{part.offset}", f"::/{name}"], capture_output=True, check=True).stdout


def write_boot_file(image: Path, name: str, data: bytes) -> None:
    """Put a file on the FAT boot partition, as an admin's PC would."""
    part = partitions(image)[1]
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        subprocess.run(["mcopy", "-o", "-i", f"{image}@@{part.offset}", f.name, f"::/{name}"], check=True)


@dataclass
class Boot:
    """One run of the emulator: the console's lines and the probe's report, if it came."""

    console: list[str]
    report: dict | None
    exit_code: int | None
    seconds: float


def kernel_and_initrd(image: Path, into: Path) -> tuple[Path, Path]:
    """Debian's arm64 kernel and the initrd build-image.sh rebuilt (with overlayroot's hook)."""
    with mounted(image, 2) as root:
        kernel = sorted((root / "boot").glob("vmlinuz-*"))[-1]
        initrd = sorted((root / "boot").glob("initrd.img-*"))[-1]
        shutil.copy(kernel, into / "vmlinuz")
        shutil.copy(initrd, into / "initrd.img")
    return into / "vmlinuz", into / "initrd.img"


def boot(image: Path, kernel: Path, initrd: Path, *, timeout_s: float, log: Path) -> Boot:
    """Boot ``image`` in qemu's ``virt`` machine (Cortex-A76, 2 cores, 2 GB, no network) until the
    probe reports; then cut the power (SIGKILL: nothing is flushed or unmounted)."""
    command = ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a76", "-smp", "2", "-m", "2048", "-nographic", "-no-reboot",
               "-nic", "none", "-kernel", str(kernel), "-initrd", str(initrd),
               "-append", "console=ttyAMA0 root=LABEL=rootfs rootfstype=ext4 rootwait ro panic=-1",
               "-drive", f"file={image},format=raw,if=virtio,cache=writeback"]
    started = time.monotonic()
    lines: list[str] = []
    report: dict | None = None
    done = threading.Event()
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def read() -> None:
        nonlocal report
        assert proc.stdout is not None
        with log.open("a", encoding="utf-8") as out:
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                lines.append(line)
                out.write(line + "\n")
                out.flush()
                if "PROBE {" in line:  # the console's login prompt may share its line
                    report = json.loads(line[line.index("PROBE {") + len("PROBE "):])
                elif "PROBE-DONE" in line:
                    done.set()
        done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    done.wait(timeout_s)
    if proc.poll() is None:
        proc.kill()  # the power cut
    proc.wait()
    reader.join(10)
    return Boot(lines, report, proc.returncode, time.monotonic() - started)
