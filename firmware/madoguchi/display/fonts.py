"""Fonts for the faces: the Debian Noto fonts, a fallback chain per language, runs of one font.

No single font covers every day-one language, and real text mixes scripts (a Vietnamese
sentence with a Japanese term, Thai with Latin digits). So text is cut into runs: each grapheme
cluster goes to the first font of the language's chain whose cmap has all of its characters, and
each run is shaped on its own by raqm (HarfBuzz). Chains start with the language's own font, so
Japanese digits are the CJK font's digits and Vietnamese diacritics come from Noto Sans.

Fonts are looked up under ``/usr/share/fonts`` (Debian ``fonts-noto-cjk``, ``fonts-noto-core``);
a missing file raises ``FontMissingError`` naming the package, when the ``FontBook`` is made.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import icu
from fontTools.ttLib import TTFont
from PIL import ImageFont, features

from madoguchi.display.errors import FontMissingError, ShapingUnavailableError
from madoguchi.languages import DAY_ONE_RESIDENT

log = logging.getLogger(__name__)

FONT_ROOT = Path("/usr/share/fonts")
DAY_ONE = ("ja", *DAY_ONE_RESIDENT)


@dataclass(frozen=True)
class FontFile:
    """One face of a font file (a TTC holds several: CJK JP, KR, SC … share one file)."""

    name: str
    file: str  # relative to the font root
    index: int  # face index inside a TTC
    package: str  # the Debian package that installs it


_CJK = "opentype/noto/NotoSansCJK-Regular.ttc"
LATIN = FontFile("Noto Sans", "truetype/noto/NotoSans-Regular.ttf", 0, "fonts-noto-core")
CJK_JP = FontFile("Noto Sans CJK JP", _CJK, 0, "fonts-noto-cjk")
CJK_KR = FontFile("Noto Sans CJK KR", _CJK, 1, "fonts-noto-cjk")
CJK_SC = FontFile("Noto Sans CJK SC", _CJK, 2, "fonts-noto-cjk")
DEVANAGARI = FontFile("Noto Sans Devanagari", "truetype/noto/NotoSansDevanagari-Regular.ttf", 0, "fonts-noto-core")
THAI = FontFile("Noto Sans Thai", "truetype/noto/NotoSansThai-Regular.ttf", 0, "fonts-noto-core")
MYANMAR = FontFile("Noto Sans Myanmar", "truetype/noto/NotoSansMyanmar-Regular.ttf", 0, "fonts-noto-core")
SINHALA = FontFile("Noto Sans Sinhala", "truetype/noto/NotoSansSinhala-Regular.ttf", 0, "fonts-noto-core")
BENGALI = FontFile("Noto Sans Bengali", "truetype/noto/NotoSansBengali-Regular.ttf", 0, "fonts-noto-core")


def _core(script: str) -> FontFile:
    return FontFile(f"Noto Sans {script}", f"truetype/noto/NotoSans{script}-Regular.ttf", 0, "fonts-noto-core")


# Beyond day one: any language a site lists among its residents gets its script's font.
_OTHER_SCRIPTS = {
    "ar": "Arabic", "fa": "Arabic", "ur": "Arabic", "ps": "Arabic", "sd": "Arabic", "he": "Hebrew", "yi": "Hebrew",
    "km": "Khmer", "lo": "Lao", "ta": "Tamil", "te": "Telugu", "kn": "Kannada", "ml": "Malayalam", "gu": "Gujarati",
    "pa": "Gurmukhi", "am": "Ethiopic", "ka": "Georgian", "hy": "Armenian",
}

# The language's own font first; everything else is a fallback for mixed text.
_PRIMARY = {
    "ja": CJK_JP, "zh": CJK_SC, "ko": CJK_KR, "ne": DEVANAGARI, "hi": DEVANAGARI, "mr": DEVANAGARI,
    "th": THAI, "my": MYANMAR, "si": SINHALA, "bn": BENGALI, "as": BENGALI, "yue": CJK_SC,
    **{lang: _core(script) for lang, script in _OTHER_SCRIPTS.items()},
}
# The box stands in Japan: a foreign word in a resident's sentence is most likely Japanese, so
# Han characters fall back to the JP forms unless the text is Chinese or Korean.
_FALLBACK = (LATIN, CJK_JP, DEVANAGARI, THAI, MYANMAR, SINHALA, BENGALI)
_REQUIRED = frozenset((LATIN, CJK_JP, CJK_KR, CJK_SC, DEVANAGARI, THAI, MYANMAR))  # day one

# Drawn by HarfBuzz as nothing (joiners, variation selectors): never a reason to switch fonts.
_IGNORABLE = frozenset((0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, *range(0xFE00, 0xFE10)))


@dataclass(frozen=True)
class Run:
    """A piece of text drawn with one font."""

    text: str
    font: FontFile


def chain_for(lang: str) -> tuple[FontFile, ...]:
    """The fallback chain of a language (ISO 639-1), own font first."""
    primary = _PRIMARY.get(lang, LATIN)
    chain = [primary, *_FALLBACK]
    if lang in ("zh", "ko"):  # their own Han forms before the Japanese ones
        chain.remove(CJK_JP)
    return tuple(dict.fromkeys(chain))


class FontBook:
    """Finds the fonts, knows what each covers, splits text into runs and caches sized fonts.

    Thread-safe: both faces may be drawn from different threads.
    """

    def __init__(self, root: Path | str = FONT_ROOT, langs: tuple[str, ...] = DAY_ONE) -> None:
        if not features.check("raqm"):
            raise ShapingUnavailableError()
        self.root = Path(root)
        self._lock = threading.Lock()
        self._coverage: dict[FontFile, frozenset[int]] = {}
        self._available: set[FontFile] = set()
        needed = {f for lang in langs for f in chain_for(lang)}
        required = _REQUIRED | {_PRIMARY.get(lang, LATIN) for lang in langs}
        for font in sorted(needed, key=lambda f: (f.file, f.index)):
            path = self.path(font)
            if path.is_file():
                self._available.add(font)
            elif font in required:
                raise FontMissingError(path, font.package, font.name)
            else:
                log.warning("optional fallback font %s not found (%s); text in its script will not show", path, font.package)
        # lru_cache per instance: a FontBook owns its caches and is dropped with them.
        self.runs = lru_cache(maxsize=2048)(self._runs)
        self.font = lru_cache(maxsize=256)(self._font)

    def path(self, font: FontFile) -> Path:
        return self.root / font.file

    def chain(self, lang: str) -> tuple[FontFile, ...]:
        return tuple(f for f in chain_for(lang) if f in self._available)

    def coverage(self, font: FontFile) -> frozenset[int]:
        """The code points the font's cmap maps to a glyph (read once, lazily: the CJK cmap takes ~0.2 s)."""
        with self._lock:
            cmap = self._coverage.get(font)
            if cmap is None:
                with TTFont(self.path(font), fontNumber=font.index, lazy=True) as tt:
                    cmap = frozenset(tt.getBestCmap())
                self._coverage[font] = cmap
                log.debug("%s covers %d code points", font.name, len(cmap))
        return cmap

    def missing(self, run: Run) -> str:
        """The characters of ``run`` its font has no glyph for (would be drawn as boxes)."""
        cmap = self.coverage(run.font)
        return "".join(c for c in run.text if ord(c) not in cmap and ord(c) not in _IGNORABLE)

    def covers(self, font: FontFile, cluster: str) -> bool:
        cmap = self.coverage(font)
        return all(ord(c) in cmap or ord(c) in _IGNORABLE for c in cluster)

    def _runs(self, text: str, lang: str) -> tuple[Run, ...]:
        """Split ``text`` into runs, whole grapheme clusters each (a mark stays with its base)."""
        chain = self.chain(lang)
        runs: list[Run] = []
        current: FontFile | None = None
        start = 0
        for a, b in clusters(text):
            cluster = text[a:b]
            if current is not None and cluster.isspace() and self.covers(current, cluster):
                continue  # spaces stay in the run: fewer runs, and shaping sees whole phrases
            font = next((f for f in chain if self.covers(f, cluster)), None)
            if font is None:  # no font has it: the base character's font shows at least that
                font = next((f for f in chain if self.covers(f, cluster[0])), chain[0])
                log.debug("no font covers %r (%s)", cluster, lang)
            if font != current:
                if current is not None:
                    runs.append(Run(text[start:a], current))
                current, start = font, a
        if current is not None:
            runs.append(Run(text[start:], current))
        return tuple(runs)

    def _font(self, font: FontFile, size: int) -> ImageFont.FreeTypeFont:
        return ImageFont.truetype(str(self.path(font)), size, index=font.index, layout_engine=ImageFont.Layout.RAQM)


def clusters(text: str) -> list[tuple[int, int]]:
    """Grapheme cluster spans (ICU character instance), as UTF-16-free Python string indices."""
    return _spans(text, icu.BreakIterator.createCharacterInstance(icu.Locale.getRoot()))


def _spans(text: str, bi: icu.BreakIterator) -> list[tuple[int, int]]:
    """Consecutive spans between the iterator's boundaries, as Python string indices.

    ICU counts UTF-16 units; Python counts code points (they differ beyond the BMP: emoji, rare Han).
    """
    bi.setText(text)
    bounds = [0, *bi]
    if any(ord(c) >= 0x10000 for c in text):
        index, units = {}, 0
        for i, c in enumerate(text):
            index[units] = i
            units += 2 if ord(c) >= 0x10000 else 1
        index[units] = len(text)
        bounds = [index[u] for u in bounds]
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]
