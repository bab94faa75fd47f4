#!/usr/bin/env python3
"""Helpers for hw/image/wheelhouse.sh (host python3, standard library only).

  wheels.py closure REPORT.json
      the wheel files pip resolved (`pip install --dry-run --report`), one file name a line
  wheels.py check --python 311 WHEEL...
      exit 1, naming every wheel a CPython 3.11 on aarch64 (glibc) cannot install
  wheels.py tsv [--built LEDGER] [--origin FILE=ORIGIN]... WHEEL...
      wheels.tsv on stdout: file, sha256, licence (from the wheel's METADATA), origin
"""

import argparse
import hashlib
import json
import re
import sys
import urllib.parse
import zipfile
from email.parser import HeaderParser
from pathlib import Path

MANYLINUX_AARCH64 = re.compile(r"manylinux(1|2010|2014|_\d+_\d+)_aarch64")


def closure(report_path):
    report = json.loads(Path(report_path).read_text())
    for item in report.get("install", []):
        url = item["download_info"]["url"]
        name = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name
        if not name.endswith(".whl"):
            sys.exit(f"wheels.py: {item['metadata']['name']} resolved to a non-wheel: {url}")
        print(name)


def _tags(filename):
    """(python tags, abi tags, platform tags) of a wheel file name (PEP 427, compressed tag sets)."""
    parts = filename[: -len(".whl")].split("-")
    if len(parts) not in (5, 6):
        raise ValueError(f"not a wheel file name: {filename}")
    py, abi, plat = parts[-3:]
    return py.split("."), abi.split("."), plat.split(".")


def installable(filename, minor):
    """Whether CPython 3.<minor> on aarch64 Linux (glibc) can install this wheel."""
    pys, abis, plats = _tags(filename)
    if not any(p == "any" or p == "linux_aarch64" or MANYLINUX_AARCH64.fullmatch(p) for p in plats):
        return False
    cp = f"cp3{minor}"
    for py in pys:
        for abi in abis:
            if abi == cp and py == cp:
                return True
            if abi == "abi3" and re.fullmatch(r"cp3\d+", py) and int(py[3:]) <= minor:
                return True
            if abi == "none" and (py in ("py3", cp) or (re.fullmatch(r"py3\d+", py) and int(py[3:]) <= minor)):
                return True
    return False


def check(python, wheels):
    if not re.fullmatch(r"3?\d\d", python):
        sys.exit(f"wheels.py: --python wants e.g. 311, not {python}")
    minor = int(python[-2:])
    bad = [w for w in wheels if not installable(Path(w).name, minor)]
    for w in bad:
        print(f"  not for CPython 3.{minor} on aarch64: {Path(w).name}", file=sys.stderr)
    return 1 if bad else 0


def metadata(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
        if not names:
            raise ValueError(f"{wheel}: no .dist-info/METADATA")
        return HeaderParser().parsestr(z.read(names[0]).decode("utf-8", "replace"))


def licence(meta):
    """The licence as the wheel declares it: License-Expression, a short License, the classifiers."""

    def clean(s):
        return " ".join(str(s).split())

    expression = meta.get("License-Expression")
    if expression and expression.strip():
        return clean(expression)
    text = (meta.get("License") or "").strip()
    if text.upper() == "UNKNOWN":
        text = ""
    short = text if text and "\n" not in text and len(text) <= 60 else ""
    if short:
        return clean(short)
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    classifiers = [c for c in classifiers if c != "OSI Approved"]
    if classifiers:
        return " / ".join(dict.fromkeys(classifiers))
    if text:
        first = clean(text.splitlines()[0])
        return first[:57] + "..." if len(first) > 60 else first
    return "UNKNOWN"


def tsv(wheels, built_ledger, origins):
    built = set()
    if built_ledger and Path(built_ledger).exists():
        built = {line.strip() for line in Path(built_ledger).read_text().splitlines() if line.strip()}
    override = dict(o.split("=", 1) for o in origins)
    print("file\tsha256\tlicence\torigin")
    for wheel in sorted(wheels, key=lambda w: Path(w).name.lower()):
        name = Path(wheel).name
        digest = hashlib.sha256(Path(wheel).read_bytes()).hexdigest()
        # PyPI refuses plain linux_* wheels, so one is always a local build even if the ledger was lost.
        if name in override:
            origin = override[name]
        elif name in built or "linux_aarch64" in _tags(name)[2]:
            origin = "built here"
        else:
            origin = "downloaded"
        print(f"{name}\t{digest}\t{licence(metadata(wheel))}\t{origin}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("closure")
    p.add_argument("report")
    p = sub.add_parser("check")
    p.add_argument("--python", required=True)
    p.add_argument("wheels", nargs="+")
    p = sub.add_parser("tsv")
    p.add_argument("--built")
    p.add_argument("--origin", action="append", default=[], metavar="FILE=ORIGIN")
    p.add_argument("wheels", nargs="+")
    args = parser.parse_args()
    if args.cmd == "closure":
        closure(args.report)
    elif args.cmd == "check":
        sys.exit(check(args.python, args.wheels))
    else:
        tsv(args.wheels, args.built, args.origin)


if __name__ == "__main__":
    main()
