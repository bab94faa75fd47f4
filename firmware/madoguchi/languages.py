"""Language codes the box knows: ISO 639-1, as Whisper and the config use them.

The names are for screens and reports; ``WHISPER`` is the set Whisper's multilingual models can
recognise, so a configured language outside it is a config error, not a silent failure.
"""

from __future__ import annotations

DAY_ONE_RESIDENT = ("en", "zh", "ko", "vi", "pt", "es", "tl", "ne", "id", "th", "my")
"""The resident languages a city-hall counter needs first (Japan's largest foreign communities)."""

NAMES: dict[str, tuple[str, str]] = {  # code: (English name, name in the language itself)
    "ja": ("Japanese", "日本語"),
    "en": ("English", "English"),
    "zh": ("Chinese", "中文"),
    "ko": ("Korean", "한국어"),
    "vi": ("Vietnamese", "Tiếng Việt"),
    "pt": ("Portuguese", "Português"),
    "es": ("Spanish", "Español"),
    "tl": ("Tagalog", "Tagalog"),
    "ne": ("Nepali", "नेपाली"),
    "id": ("Indonesian", "Bahasa Indonesia"),
    "th": ("Thai", "ไทย"),
    "my": ("Burmese", "မြန်မာ"),
    "fr": ("French", "Français"),
    "de": ("German", "Deutsch"),
    "ru": ("Russian", "Русский"),
    "hi": ("Hindi", "हिन्दी"),
    "bn": ("Bengali", "বাংলা"),
    "si": ("Sinhala", "සිංහල"),
    "ur": ("Urdu", "اردو"),
    "mn": ("Mongolian", "Монгол"),
    "km": ("Khmer", "ខ្មែរ"),
    "lo": ("Lao", "ລາວ"),
    "uk": ("Ukrainian", "Українська"),
    "ar": ("Arabic", "العربية"),
    "fa": ("Persian", "فارسی"),
    "tr": ("Turkish", "Türkçe"),
    "ms": ("Malay", "Bahasa Melayu"),
    "it": ("Italian", "Italiano"),
}

WHISPER = frozenset(
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no th "
    "ur hr bg lt la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw gl mr "
    "pa si km sn yo so af oc ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl mg as tt "
    "haw ln ha ba jw su yue".split()
)
"""Whisper's 99 (+ Cantonese) language codes."""


RIGHT_TO_LEFT = frozenset({"ar", "fa", "ur", "ps", "sd", "he", "yi"})
"""Written right to left: a face aligns their lines to the right."""


def english_name(code: str) -> str:
    return NAMES.get(code, (code, code))[0]


def native_name(code: str) -> str:
    return NAMES.get(code, (code, code))[1]
