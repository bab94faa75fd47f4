"""Machine-translation errors. Bad model files are ``madoguchi.models.errors`` classes (missing,
truncated, corrupt: they name the file and the command that fixes it); the classes here cover
what is specific to translation. Each has a stable ``code``.
"""

from __future__ import annotations

from madoguchi.errors import MadoguchiError
from madoguchi.models.errors import ModelError


class MtModelUnsupportedError(ModelError):
    """The folder holds files, but not a translation model of a family the engine knows."""

    code = "mt_model_unsupported"


class MtError(MadoguchiError):
    """Base of translation errors that are not about model files."""

    code = "mt_error"


class MtLanguageError(MtError, ValueError):
    """A model was asked for a language it does not cover."""

    code = "mt_language_unsupported"


class MtRouteError(MtError, LookupError):
    """No installed model (or pair of models through the pivot language) translates this pair."""

    code = "mt_no_route"


class MtVocabularyMapError(MtError, ValueError):
    """A vocabulary map (vmap.txt) is malformed, or cannot be built from what was given."""

    code = "mt_vmap_invalid"


class MtTranslationError(MtError, RuntimeError):
    """CTranslate2 failed while translating (the model loaded, so this is not a file problem)."""

    code = "mt_failed"


class MtClosedError(MtError, RuntimeError):
    """The translator was used after ``close()``."""

    code = "mt_closed"
