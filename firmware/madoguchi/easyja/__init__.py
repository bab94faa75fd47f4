"""Easy Japanese (やさしい日本語): short sentences, plain polite words, glossary terms explained,
kana readings after kanji above a school grade, and spaces between phrases."""

from .errors import EasyJapaneseError
from .model import EasySentence, EasyText, Segment
from .rewrite import EasyJapanese

__all__ = ["EasyJapanese", "EasyJapaneseError", "EasySentence", "EasyText", "Segment"]
