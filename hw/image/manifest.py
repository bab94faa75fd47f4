"""The image's manifest: what an admin flashes, file by file, with hashes and licences.

Run by build-image.sh on the build machine (standard library only, any Python 3.11+):

    python3 hw/image/manifest.py --root MNT --wheels DIR --debs DIR --models DIR \\
        --version V --commit C --base FILE --suite S --python 3.11 --out FILE.json

Wheels: name, version, licence from each wheel's METADATA (read as wheelhouse.sh's wheels.tsv reads it). Debs: package, version and
architecture from the .deb itself, the licence from the image's /usr/share/doc/PKG/copyright.
Models: every file's sha256 and size, the licence from models/manifest.toml.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

from wheels import licence, metadata  # hw/image/wheels.py, beside this script

HERE = Path(__file__).resolve().parent
MODELS_MANIFEST = HERE.parents[1] / "models" / "manifest.toml"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wheels(folder: Path) -> list[dict[str, str]]:
    found = []
    for path in sorted(folder.glob("*.whl")):
        meta = metadata(path)
        found.append({"file": path.name, "name": meta["Name"], "version": meta["Version"], "sha256": sha256(path), "licence": licence(meta)})
    return found


def deb_field(path: Path, field: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(path), field], capture_output=True, text=True, check=True).stdout.strip()


def deb_licence(root: Path, package: str) -> str:
    """The licences named in the package's machine-readable copyright file, else "see FILE"."""
    copyright_file = root / "usr/share/doc" / package / "copyright"
    if not copyright_file.is_file():
        return "UNKNOWN"
    names = []
    for line in copyright_file.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("License:"):
            name = line.split(":", 1)[1].strip()
            if name and name not in names:
                names.append(name)
    return "; ".join(names) if names else f"see /usr/share/doc/{package}/copyright"


def debs(folder: Path, root: Path) -> list[dict[str, str]]:
    found = []
    for path in sorted(folder.glob("*.deb")):
        package = deb_field(path, "Package")
        found.append({"file": path.name, "package": package, "version": deb_field(path, "Version"), "architecture": deb_field(path, "Architecture"),
                      "sha256": sha256(path), "licence": deb_licence(root, package)})
    return found


def models(store: Path) -> list[dict[str, object]]:
    licences = {entry["id"]: entry.get("licence", "UNKNOWN") for entry in tomllib.loads(MODELS_MANIFEST.read_text(encoding="utf-8"))["models"]}
    found = []
    for folder in sorted(p for p in store.iterdir() if p.is_dir() and not p.name.startswith(".")) if store.is_dir() else []:
        files = [{"path": str(f.relative_to(folder)), "bytes": f.stat().st_size, "sha256": sha256(f)} for f in sorted(folder.rglob("*")) if f.is_file()]
        found.append({"id": folder.name, "licence": licences.get(folder.name, "UNKNOWN"), "files": files})
    return found


def build(args: argparse.Namespace) -> dict[str, object]:
    base = Path(args.base)
    return {
        "format": 1,
        "firmware": {"name": "madoguchi", "version": args.version, "commit": args.commit},
        "built": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "base_image": {"file": base.name, "sha256": sha256(base)},
        "os": {"suite": args.suite, "python": args.python, "architecture": "arm64"},
        "wheels": wheels(Path(args.wheels)),
        "debs": debs(Path(args.debs), Path(args.root)),
        "models": models(Path(args.models)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("root", "wheels", "debs", "models", "version", "commit", "base", "suite", "python", "out"):
        parser.add_argument(f"--{name}", required=True)
    args = parser.parse_args(argv)
    manifest = build(args)
    Path(args.out).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    unknown = [w["file"] for w in manifest["wheels"] if w["licence"] == "UNKNOWN"] + [d["file"] for d in manifest["debs"] if d["licence"] == "UNKNOWN"]
    print(f"    {len(manifest['wheels'])} wheels, {len(manifest['debs'])} debs, {len(manifest['models'])} models -> {args.out}")
    if unknown:
        print(f"    licence not stated by: {', '.join(unknown)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
