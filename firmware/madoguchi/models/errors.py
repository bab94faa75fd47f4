"""The model manager's errors: each names the model, the file and the command that fixes it."""

from __future__ import annotations

from pathlib import Path

from madoguchi.errors import MadoguchiError


class ManifestError(MadoguchiError, ValueError):
    """``models/manifest.toml`` (or its lock) is invalid: the message names the file, entry and key."""

    code = "manifest_invalid"


class ModelError(MadoguchiError, OSError):
    """A model cannot be used or obtained. ``model_id`` and ``file`` say which; ``str()`` says the fix."""

    code = "model_error"

    def __init__(self, message: str, model_id: str = "", file: Path | str | None = None) -> None:
        super().__init__(message)
        self.model_id = model_id
        self.file = Path(file) if file is not None else None

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ModelMissingError(ModelError):
    """A file of the model (or the whole model) is not in the store."""

    code = "model_missing"


class ModelCorruptError(ModelError):
    """A file's sha256 (or size, when too long) differs from the lock."""

    code = "model_corrupt"


class ModelTruncatedError(ModelError):
    """A file is shorter than the lock says: an interrupted copy or download."""

    code = "model_truncated"


class ModelUnlicensedError(ModelError):
    """The model's licence forbids commercial use and it was not explicitly accepted."""

    code = "model_unlicensed"


class ModelUnavailableError(ModelError):
    """No source this machine can use: the model's hub is unreachable or unpinned, or its converter is not installed."""

    code = "model_unavailable"


class ModelUnlockedError(ModelError):
    """The model is present but the lock has no entry for it, so it cannot be verified."""

    code = "model_unlocked"


# Fetching from a model hub (hub.py): each failure of the download and the conversion.

class HubUnreachableError(ModelUnavailableError):
    """The hub (or $HF_ENDPOINT) did not answer, or answered with a server error."""

    code = "hub_unreachable"


class HubFileMissingError(ModelMissingError):
    """The repository, or a file it must have, is not on the hub (HTTP 404)."""

    code = "hub_file_missing"


class HubRevisionError(ModelError):
    """The pinned commit does not exist in the repository, or the hub answered for another commit."""

    code = "hub_revision_mismatch"


class HubUnpinnedError(ModelUnavailableError):
    """The manifest names no commit for the repository, so what it would fetch is not known in advance."""

    code = "hub_unpinned"


class HubChecksumError(ModelCorruptError):
    """A downloaded file does not match the hash the hub lists for it at the pinned commit."""

    code = "hub_file_corrupt"


class ConverterMissingError(ModelUnavailableError):
    """transformers, torch or ctranslate2 is not installed on this machine."""

    code = "converter_missing"


class ConversionFailedError(ModelError):
    """CTranslate2's converter failed, or did not write the files the manifest lists."""

    code = "model_convert_failed"


class NoSpaceError(ModelError):
    """Not enough free disk space for the download or the converted model."""

    code = "model_no_space"
