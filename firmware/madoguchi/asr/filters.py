"""Is a decoded text speech, or something Whisper made up? Pure functions on the decoder's evidence.

Whisper, given silence, noise or murmur, still writes text: the end credits of the videos it was
trained on ("ご視聴ありがとうございました", "Thank you for watching", "字幕 …"), one word ("you"),
or a loop of one phrase. A counter display must show none of that, so every transcription goes
through :func:`rejection_reason` before anyone sees it:

1. ``empty``         nothing left once punctuation, symbols and spaces are removed
2. ``no_speech``     the model's no-speech probability is high *and* the text is unconfident
                     (Whisper's own rule; a confident decode overrules a high no-speech estimate)
3. ``hallucination`` the whole output is a known Whisper hallucination, or only a sound tag such
                     as "(音楽)" / "[Music]"; matched on normalised text and on the whole output,
                     so real speech that merely contains "ありがとうございました" passes
4. ``repetition``    a decoding loop: gzip compression ratio over the threshold, or one unit
                     repeated back to back over most of the text
5. ``low_confidence`` average log-probability below the threshold whatever the no-speech
                     estimate says (the backstop when the backend has no such estimate), except
                     that a whole output that is one of the language's yes/no answers
                     (:data:`YES_NO_REPLIES`, or one said twice) needs only a lower one: Whisper scores a
                     reverberant "Yes." or そうです at -1.2 .. -1.3, while the short replies it gets
                     wrong in the same rooms come out as other words ("Sangue.", "4 y un baño");
                     and thanks (:data:`THANKS`) a little lower: a far-field "Gracias." or "Thanks!"
                     came out right at -1.04 .. -1.06, where murmur written as "Thank you." scores
                     -1.3 and below
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass

REJECTIONS = ("no_speech", "hallucination", "repetition", "low_confidence", "empty")

# Whole outputs Whisper is known to produce on silence and noise, by the language they come out
# in (any of them is rejected whatever language was asked for). Written as regular expressions
# over normalised text (NFKC, lower case, no punctuation, symbols or spaces).
_HALLUCINATIONS: dict[str, tuple[str, ...]] = {
    "ja": (
        r"(最後まで)?ご(視聴|清聴)(いただき|頂き)?(本当に)?(ありがとうございました|ありがとうございます)",
        r"チャンネル登録(を)?(お願いします|よろしくお願いします|お願いいたします|してね)",
        r"(高評価|グッドボタン)(と|や)?(チャンネル登録)?(を)?(お願いします|よろしくお願いします)",
        r"字幕((作成|制作|提供|協力|翻訳)(者)?|by).*|字幕",  # credits, not "字幕をお願いします"
        r"(次回|また次回)(の動画)?(で|も)(お会いしましょう|会いましょう)",
        r"おやすみなさいませ",
    ),
    "en": (
        r"(thank you|thanks)(so much|very much)?for watching(and)?(please)?(like|subscribe|likeandsubscribe)?",
        r"(please)?(like and )?subscribe(to (my|our|the) channel)?",
        r"(subtitles|captions|transcription|transcript|translation|translated|transcribed|subtitled)by.*",
        r".*amaraorg.*",
        r"you",
        r"(see you|ill see you)(in the)?next (video|time)",
    ),
    "zh": (
        r"(请不吝)?点赞订阅转发打赏.*",
        r"(谢谢|感谢)(大家|您)?(的)?(观看|收看)",
        r"字幕(由|by).*",
        r".*明镜与点点.*",
    ),
    "ko": (r"(시청|구독)해\s?주셔서 감사합니다", r"구독(과|와)? ?좋아요.*", r"자막(제공|제작|by).*|자막"),
    "vi": (r"(hãy )?(subscribe|đăng ký) cho kênh.*", r"cảm ơn (các bạn|bạn) đã (xem|theo dõi).*"),
    "pt": (r"obrigad[oa] por assistir.*", r"legendas? (pela|por|da) comunidade.*"),
    "es": (r"gracias por ver(el video)?.*", r"subt[ií]tulos (realizados )?por.*", r"suscr[ií]bete.*"),
    "id": (r"terima kasih (telah|sudah) menonton.*",),
    "th": (r"ขอบคุณที่รับชม.*",),
}
# A bracketed sound tag and nothing else: "(音楽)", "[Music]", "♪", "(拍手)", "*laughs*".
_SOUND_TAG = re.compile(r"^\s*([(\[（【*♪♫].*?[)\]）】*♪♫]|[♪♫]+)\s*$")


def normalize(text: str) -> str:
    """NFKC, lower case, letters and digits only: the form hallucinations are matched in."""
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LNM")


# The answers to a clerk's yes/no question, by language (matched normalised, the whole output).
# Only these closed-set words get the lower confidence bar: thanks and greetings are left out, as
# "Thank you." is also what Whisper writes for murmur.
_YES_NO: dict[str, str] = {
    "ja": "はい|いいえ|ええ|そうです|はいそうです|違います|ちがいます",
    "en": "yes|no|yeah|yep|nope|okay|ok|sure|yes please|no thank you",
    "es": "sí|si|no|vale|claro|sí por favor|no gracias",
    "pt": "sim|não|nao|claro|tá|ta",
    "zh": "是|是的|对|对的|不是|不|好|好的|有|没有",
    "ko": "네|예|아니요|아니오|아뇨",
    "vi": "vâng|dạ|không|có|phải|đúng",
    "id": "ya|iya|tidak|bukan",
    "tl": "oo|opo|hindi|hindi po",
    "th": "ใช่|ใช่ครับ|ใช่ค่ะ|ไม่|ไม่ใช่|ครับ|ค่ะ",
    "ne": "हो|होइन|छ|छैन",
    "my": "ဟုတ်ကဲ့|မဟုတ်ဘူး",
}


# Thanks, which end most residents' visits. Not the past-tense ありがとうございました: with ご視聴 it
# ends the videos Whisper learnt from, and comes out of silence.
_THANKS: dict[str, str] = {
    "ja": "ありがとうございます|ありがとう",
    "en": "thank you|thanks|thank you very much|thanks a lot",
    "es": "gracias|muchas gracias",
    "pt": "obrigado|obrigada|muito obrigado|muito obrigada",
    "zh": "谢谢|謝謝|谢谢你|謝謝你|谢谢您|謝謝您",
    "ko": "감사합니다|고맙습니다",
    "vi": "cảm ơn|cám ơn|xin cảm ơn",
    "id": "terima kasih",
    "tl": "salamat|salamat po",
    "th": "ขอบคุณ|ขอบคุณครับ|ขอบคุณค่ะ",
    "ne": "धन्यवाद",
    "my": "ကျေးဇူးတင်ပါတယ်",
}


def phrase_sets(phrases: dict[str, str]) -> dict[str, frozenset[str]]:
    """``{lang: "a|b|c"}`` as normalised sets, for matching a whole output (see :func:`normalize`)."""
    return {lang: frozenset(normalize(w) for w in words.split("|")) for lang, words in phrases.items()}


YES_NO_REPLIES = phrase_sets(_YES_NO)
THANKS = phrase_sets(_THANKS)


def is_yes_no_reply(text: str, lang: str | None) -> bool:
    """The whole output is one yes/no answer in ``lang`` ("Yes!", "はい、そうです。", "Sí."), or one
    said twice ("Não, não.", "No, no."; a loop of more is a decoding loop, not an answer)."""
    replies = YES_NO_REPLIES.get(lang or "", frozenset())
    norm = normalize(text)
    half = len(norm) // 2
    return norm in replies or (len(norm) % 2 == 0 and norm[:half] == norm[half:] and norm[:half] in replies)


def is_thanks(text: str, lang: str | None) -> bool:
    """The whole output is a thanks in ``lang`` ("Gracias.", "Thank you!", 谢谢)."""
    return normalize(text) in THANKS.get(lang or "", frozenset())


def _compile() -> re.Pattern[str]:
    alternatives = [normalize_pattern(p) for patterns in _HALLUCINATIONS.values() for p in patterns]
    # one or more known phrases back to back, the whole output and nothing else
    return re.compile(rf"(?:{'|'.join(alternatives)})+")


def normalize_pattern(pattern: str) -> str:
    # the patterns are written readably with spaces; matching happens on text without them
    return pattern.replace(" ", "")


_HALLUCINATION = _compile()


def is_known_hallucination(text: str) -> bool:
    """The whole output is a sound tag or one or more known Whisper hallucinations."""
    if _SOUND_TAG.match(text):
        return True
    norm = normalize(text)
    return bool(norm) and _HALLUCINATION.fullmatch(norm) is not None


def compression_ratio(text: str) -> float:
    """UTF-8 bytes over zlib-compressed bytes, as Whisper computes it: loops compress well."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _units(text: str) -> list[str]:
    """Words for space-delimited text, characters for CJK/Thai/Burmese (written without spaces)."""
    words = text.split()
    return words if len(words) >= 3 else list(normalize(text))


LONG_UNIT_CHARS = 4  # a phrase this long said three times over is a decoding loop; "はい、はい、はい" is not


def repeated_run(text: str, *, min_repeats: int = 4, max_unit: int = 8) -> float:
    """Share of the text covered by the longest back-to-back run of one unit (1..max_unit units long)
    repeated at least ``min_repeats`` times (three times for a unit of LONG_UNIT_CHARS characters
    or more: 国民健康保険、国民健康保険、国民健康保険); 0 when there is none."""
    units = [normalize(u) for u in _units(text)]
    units = [u for u in units if u]
    n = len(units)
    best = 0
    for size in range(1, max_unit + 1):
        for start in range(0, n - size * min(3, min_repeats) + 1):
            unit = units[start : start + size]
            repeats = 1
            while units[start + repeats * size : start + (repeats + 1) * size] == unit:
                repeats += 1
            needed = min(3, min_repeats) if len("".join(unit)) >= LONG_UNIT_CHARS else min_repeats
            if repeats >= needed:
                best = max(best, repeats * size)
    return best / n if n else 0.0


@dataclass(frozen=True)
class RejectionThresholds:
    """From ``[asr]``: no_speech_threshold, logprob_threshold, compression_ratio_threshold."""

    no_speech: float = 0.6
    logprob: float = -1.0
    compression_ratio: float = 2.4
    # Below logprob + this margin the text is rejected even without a no-speech estimate (whisper.cpp
    # through pywhispercpp has none): clear speech decodes at about -0.1 .. -0.5, while murmur that
    # Whisper turns into "Thank you." or a random sentence comes out at -1 and below.
    low_confidence_margin: float = 0.0
    repetition_share: float = 0.5
    # A yes/no answer (is_yes_no_reply) is shown down to logprob + this: on the far-field counters
    # right ones scored -1.2 .. -1.3, and no wrong decode of a short reply was such a word.
    yes_no_margin: float = -1.0
    # ... and a thanks (is_thanks) down to logprob + this: right ones at -1.04 .. -1.06 on 48
    # simulated counters, none of the murmur there written as thanks.
    thanks_margin: float = -0.2


def rejection_reason(
    text: str,
    *,
    avg_logprob: float,
    no_speech_prob: float | None,
    compression: float | None = None,
    thresholds: RejectionThresholds = RejectionThresholds(),
    lang: str | None = None,
) -> str | None:
    """None when ``text`` may be shown, else one of :data:`REJECTIONS` (checked in that order).

    ``lang``: the language the text was decoded in, for the yes/no answers' lower bar."""
    if not normalize(text) and not _SOUND_TAG.match(text):
        return "empty"
    if no_speech_prob is not None and no_speech_prob > thresholds.no_speech and avg_logprob < thresholds.logprob:
        return "no_speech"
    if is_known_hallucination(text):
        return "hallucination"
    ratio = compression_ratio(text) if compression is None else compression
    if ratio > thresholds.compression_ratio or repeated_run(text) > thresholds.repetition_share:
        return "repetition"
    floor = thresholds.logprob + thresholds.low_confidence_margin
    if is_yes_no_reply(text, lang):
        floor += thresholds.yes_no_margin
    elif is_thanks(text, lang):
        floor += thresholds.thanks_margin
    if avg_logprob < floor:
        return "low_confidence"
    return None
