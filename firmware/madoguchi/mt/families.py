"""Model families: which tokenizer files each one ships, and how it marks languages.

The family is detected from the model folder alone (no manifest needed, so ``from_folders``
and imported models work the same):

=========== ============================================ ==========================================
family      tokenizer files                              told apart by
=========== ============================================ ==========================================
marian      ``source.spm`` + ``target.spm``              the files (OPUS-MT, Tatoeba-Challenge)
m2m100      ``sentencepiece.bpe.model``                  ``__en__``-style tokens in the vocabulary
nllb        ``sentencepiece.bpe.model``                  ``eng_Latn``-style tokens in the vocabulary
madlad      ``spiece.model``                             ``<2en>``-style tokens in the vocabulary
=========== ============================================ ==========================================

How each family is fed (CTranslate2 takes token strings; every source ends with ``</s>``):

- **marian**: ``pieces </s>``; a multi-target model (its vocabulary holds ``>>xxx<<`` tokens)
  starts with the target's tag: ``>>vie<< pieces </s>``. A pair model's direction is the last
  two parts of its id: ``opus-mt-ja-en`` is ja→en (``mul`` = several languages).
- **m2m100**: ``__ja__ pieces </s>``, target prefix ``__vi__``.
- **nllb**: ``jpn_Jpan pieces </s>`` (the source tag first, as the current, non-legacy NLLB
  tokenizer of transformers does), target prefix ``vie_Latn``.
- **madlad**: ``<2vi> pieces </s>`` (the *target* tag), no target prefix.

Each language maps to candidate tokens; the first one the model's vocabulary holds wins (model
versions differ, e.g. Tagalog is ``<2tl>`` or ``<2fil>``, Chinese ``>>cmn_Hans<<`` or ``>>zho<<``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

DAY_ONE = ("ja", "en", "zh", "ko", "vi", "pt", "es", "tl", "ne", "id", "th", "my")
"""Staff Japanese, English (also the pivot), and the resident languages a counter needs first."""

EOS = "</s>"

_NLLB = {"ja": "jpn_Jpan", "en": "eng_Latn", "zh": "zho_Hans", "ko": "kor_Hang", "vi": "vie_Latn", "pt": "por_Latn",
         "es": "spa_Latn", "tl": "tgl_Latn", "ne": "npi_Deva", "id": "ind_Latn", "th": "tha_Thai", "my": "mya_Mymr"}
_MARIAN = {"ja": ("jpn",), "en": ("eng",), "zh": ("cmn_Hans", "zho_Hans", "zho", "cmn"), "ko": ("kor",), "vi": ("vie",),
           "pt": ("por",), "es": ("spa",), "tl": ("tgl", "fil"), "ne": ("npi", "nep"), "id": ("ind",), "th": ("tha",), "my": ("mya",)}
_MADLAD_EXTRA = {"tl": ("fil",)}


@dataclass(frozen=True)
class Family:
    name: str
    title: str
    tokenizer_files: tuple[str, ...]  # (source, target) for Marian, (shared,) otherwise
    language_tokens: Mapping[str, tuple[str, ...]]  # ISO 639-1 -> candidate tokens, best first
    source_tag: bool = False  # the source language's tag starts the source (M2M100, NLLB)
    target_tag_in_source: bool = False  # the target language's tag starts the source (MADLAD, multi-target Marian)
    target_tag_as_prefix: bool = False  # the target language's tag is the forced first target token (M2M100, NLLB)

    def language_token(self, lang: str, vocabulary: Collection[str]) -> str | None:
        """The token this model uses for ``lang``, or None if its vocabulary has none."""
        return next((t for t in self.language_tokens.get(lang, ()) if t in vocabulary), None)

    def languages(self, vocabulary: Collection[str]) -> frozenset[str]:
        """The ISO codes this (multilingual) model has a language token for."""
        return frozenset(lang for lang in self.language_tokens if self.language_token(lang, vocabulary))


MARIAN = Family("marian", "Marian (OPUS-MT)", ("source.spm", "target.spm"),
                {lang: tuple(f">>{c}<<" for c in (*codes, lang)) for lang, codes in _MARIAN.items()})
M2M100 = Family("m2m100", "M2M100", ("sentencepiece.bpe.model",), {lang: (f"__{lang}__",) for lang in DAY_ONE},
                source_tag=True, target_tag_as_prefix=True)
NLLB = Family("nllb", "NLLB-200", ("sentencepiece.bpe.model",), {lang: (code,) for lang, code in _NLLB.items()},
              source_tag=True, target_tag_as_prefix=True)
MADLAD = Family("madlad", "MADLAD-400 (T5)", ("spiece.model",),
                {lang: tuple(f"<2{c}>" for c in (lang, *_MADLAD_EXTRA.get(lang, ()))) for lang in DAY_ONE}, target_tag_in_source=True)
FAMILIES = (MARIAN, M2M100, NLLB, MADLAD)

TOKENIZER_HINT = "source.spm + target.spm (Marian/OPUS-MT), sentencepiece.bpe.model (M2M100, NLLB-200) or spiece.model (MADLAD-400)"


def tokenizer_family_candidates(folder: Path) -> tuple[Family, ...]:
    """Families whose tokenizer files are (at least partly) present; a Marian folder with one of its two .spm counts."""
    if any((folder / name).is_file() for name in MARIAN.tokenizer_files):
        return (MARIAN,)
    if (folder / "sentencepiece.bpe.model").is_file():
        return (M2M100, NLLB)
    if (folder / "spiece.model").is_file():
        return (MADLAD,)
    return ()


def family_from_vocabulary(candidates: tuple[Family, ...], vocabulary: Collection[str]) -> Family | None:
    """Among the candidates the tokenizer files allow, the one whose English tag is in the vocabulary (Marian needs none)."""
    for family in candidates:
        if family is MARIAN or family.language_token("en", vocabulary):
            return family
    return None


def marian_tags(vocabulary: Collection[str]) -> bool:
    """A multi-target Marian model: its vocabulary holds ``>>xxx<<`` target tags."""
    return any(t.startswith(">>") and t.endswith("<<") for t in vocabulary)


def marian_direction(model_id: str) -> tuple[str, str] | None:
    """(source, target) from an id ending in ``-<src>-<tgt>`` (``opus-mt-ja-en``); ``mul`` means several languages."""
    parts = model_id.lower().split("-")
    if len(parts) < 2:
        return None
    source, target = parts[-2], parts[-1]
    ok = all(code == "mul" or (len(code) == 2 and code.isalpha()) for code in (source, target))
    return (source, target) if ok else None
