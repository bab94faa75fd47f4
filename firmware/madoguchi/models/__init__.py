"""Model manager: the manifest of every model, the on-disk store, fetch, import, verify, lock.

``models/manifest.toml`` (in the repository) lists each model; ``models/manifest.lock`` holds the
sha256 and size of each file, written on first fetch and enforced after. Weights live in the
model store (``/var/lib/madoguchi/models`` on the box), one folder per model id.
"""

from madoguchi.models.errors import (
    ManifestError,
    ModelCorruptError,
    ModelError,
    ModelMissingError,
    ModelTruncatedError,
    ModelUnavailableError,
    ModelUnlicensedError,
    ModelUnlockedError,
)

__all__ = [
    "ManifestError",
    "ModelCorruptError",
    "ModelError",
    "ModelMissingError",
    "ModelTruncatedError",
    "ModelUnavailableError",
    "ModelUnlicensedError",
    "ModelUnlockedError",
]
