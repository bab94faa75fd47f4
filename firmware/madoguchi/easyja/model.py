"""What easy Japanese produces: sentences of phrases (bunsetsu) of words, each with its reading."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    """One word as shown: a word, or the kanji part of a word and its kana tail (書 + いて), so
    the reading sits right after the kanji it reads: 書(か)いて."""

    surface: str
    reading: str | None  # hiragana, or None when no reading is shown

    def shown(self, readings: bool) -> str:
        return f"{self.surface}({self.reading})" if readings and self.reading else self.surface


@dataclass(frozen=True)
class EasySentence:
    phrases: tuple[tuple[Segment, ...], ...]

    @property
    def plain(self) -> str:
        """The sentence without readings and spaces (what max_sentence_chars counts)."""
        return "".join(s.surface for phrase in self.phrases for s in phrase)

    def display(self, readings: bool = True, spaces: bool = True) -> str:
        return (" " if spaces else "").join("".join(s.shown(readings) for s in phrase) for phrase in self.phrases)


@dataclass(frozen=True)
class EasyText:
    sentences: tuple[EasySentence, ...]

    def display_text(self, readings: bool = True, spaces: bool = True) -> str:
        """Sentences joined by a space (分かち書き) or nothing; readings as 漢字(かんじ)."""
        return (" " if spaces else "").join(s.display(readings, spaces) for s in self.sentences)

    @property
    def plain(self) -> str:
        return "".join(s.plain for s in self.sentences)
