"""Dialogue text for the simulated city-hall counter.

Each topic has one fixed Kokoro staff voice so that the three scene variants of a topic (and
babble drawn from it) reuse cached clips: Kokoro is the slow part of building the scenes.
Tokens: "@ack" = short staff acknowledgement; "@yes", "@no", "@thanks" = short resident replies.
"""
from __future__ import annotations

import logging

import numpy as np

from .spec import Line

log = logging.getLogger(__name__)

STAFF_ACKS = ("はい。", "ええ。", "そうです。", "かしこまりました。")

# (topic name, staff voice, turns); resident turns are English and get swapped for other languages.
TOPICS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("転入届・住民票", "jf_alpha", (
        ("staff", "こんにちは。本日はどのようなご用件でしょうか。"),
        ("resident", "Hello. I moved here last week, and I need to register my new address."),
        ("staff", "転入届ですね。在留カードはお持ちですか。"),
        ("resident", "Yes, here is my residence card."),
        ("staff", "こちらの用紙に、新しいご住所をご記入ください。"),
        ("resident", "@yes"),
        ("resident", "Can I write my name in English letters?"),
        ("staff", "@ack"),
        ("staff", "住民票の写しも必要ですか。一通三百円です。"),
        ("resident", "Yes, one copy, please."),
        ("staff", "少々お待ちください。"),
        ("staff", "お待たせしました。こちらが住民票の写しです。"),
        ("resident", "@thanks"),
    )),
    ("住民票の写し", "jf_gongitsune", (
        ("staff", "次の方、どうぞ。"),
        ("resident", "Hi. I would like a copy of my residence certificate."),
        ("staff", "本人確認のため、在留カードを見せてください。"),
        ("resident", "@yes"),
        ("staff", "世帯全員の分が必要ですか。"),
        ("resident", "@no"),
        ("resident", "Just for me, please. It is for my bank account."),
        ("staff", "@ack"),
        ("staff", "では、こちらにお名前を書いてください。"),
        ("resident", "@yes"),
        ("staff", "手数料は三百円です。"),
        ("resident", "Here is three hundred yen."),
        ("resident", "@thanks"),
    )),
    ("マイナンバーカード", "jf_nezumi", (
        ("staff", "マイナンバーカードの受け取りですか。"),
        ("resident", "Yes. I got this letter in the mail last week."),
        ("staff", "在留カードもお願いします。"),
        ("resident", "@yes"),
        ("staff", "暗証番号を、数字四桁で決めてください。"),
        ("resident", "Four digits? Can I use my birthday?"),
        ("staff", "@ack"),
        ("staff", "三回間違えるとロックされますので、ご注意ください。"),
        ("resident", "@yes"),
        ("staff", "カードはこちらです。"),
        ("resident", "@thanks"),
    )),
    ("国民健康保険", "jf_tebukuro", (
        ("staff", "国民健康保険の加入ですね。"),
        ("resident", "Yes. I left my company last month, so I need new insurance."),
        ("staff", "会社を辞めた日がわかる書類はありますか。"),
        ("resident", "@no"),
        ("resident", "I only have my residence card."),
        ("staff", "@ack"),
        ("staff", "資格喪失証明書を、後日お持ちください。"),
        ("resident", "How much will it cost per month?"),
        ("staff", "保険料は、前の年の所得で決まります。"),
        ("resident", "Can I pay at a convenience store?"),
        ("staff", "@ack"),
        ("resident", "@thanks"),
    )),
    ("印鑑登録", "jm_kumo", (
        ("staff", "印鑑登録をご希望ですか。"),
        ("resident", "Yes. I need a registered seal for my apartment contract."),
        ("staff", "登録する印鑑をお持ちですか。"),
        ("resident", "@yes"),
        ("resident", "This is my seal. It has my name in katakana."),
        ("staff", "カタカナのお名前でも登録できます。"),
        ("resident", "How long does it take?"),
        ("staff", "十五分ほどかかります。"),
        ("resident", "@yes"),
        ("staff", "印鑑登録証は大切に保管してください。"),
        ("resident", "@thanks"),
    )),
    ("転出届", "jf_alpha", (
        ("staff", "転出届ですね。引っ越し先はどちらですか。"),
        ("resident", "I am moving to Osaka on the fifteenth of next month."),
        ("staff", "@ack"),
        ("staff", "こちらが転出証明書です。"),
        ("resident", "Should I take it to the city hall in Osaka?"),
        ("staff", "@ack"),
        ("resident", "Do I need to do anything else here?"),
        ("staff", "国民健康保険に入っていますか。"),
        ("resident", "@no"),
        ("resident", "My company gives me health insurance."),
        ("staff", "それでは、手続きはこれで終わりです。"),
        ("resident", "@thanks"),
    )),
    ("国民年金", "jf_gongitsune", (
        ("staff", "国民年金の手続きですね。"),
        ("resident", "Yes. I got a letter about the national pension."),
        ("staff", "二十歳以上の方は、加入が必要です。"),
        ("resident", "I am a student. Do I still have to pay every month?"),
        ("staff", "学生納付特例という制度が使えます。"),
        ("resident", "@yes"),
        ("staff", "学生証と一緒に、この申請書を出してください。"),
        ("resident", "Here is my student card."),
        ("staff", "@ack"),
        ("resident", "@thanks"),
    )),
    ("児童手当", "jf_nezumi", (
        ("staff", "児童手当の申請ですね。"),
        ("resident", "Yes. I have two children. My son is five, and my daughter is two."),
        ("staff", "振込先の通帳をお持ちですか。"),
        ("resident", "@yes"),
        ("resident", "Here is my bank book."),
        ("staff", "@ack"),
        ("staff", "手当は、申請の翌月分から支給されます。"),
        ("resident", "When is the first payment?"),
        ("staff", "六月に振り込まれます。"),
        ("resident", "Do I have to apply again every year?"),
        ("staff", "@ack"),
        ("resident", "@thanks"),
    )),
)

# Short resident replies per language: yes / no / thanks (several options each for English).
SHORT_REPLIES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {"yes": ("Yes.", "OK.", "Sure.", "Right."), "no": ("No.",),
           "thanks": ("Thank you.", "Thanks.")},
    "vi": {"yes": ("Vâng.",), "no": ("Không.",), "thanks": ("Cảm ơn.",)},
    "pt": {"yes": ("Sim.",), "no": ("Não.",), "thanks": ("Obrigado.",)},
    "es": {"yes": ("Sí.",), "no": ("No.",), "thanks": ("Gracias.",)},
    "id": {"yes": ("Ya.",), "no": ("Tidak.",), "thanks": ("Terima kasih.",)},
    "ne": {"yes": ("हो।",), "no": ("होइन।",), "thanks": ("धन्यवाद।",)},
    "zh": {"yes": ("是的。",), "no": ("不是。",), "thanks": ("谢谢。",)},
    "ko": {"yes": ("네.",), "no": ("아니요.",), "thanks": ("감사합니다.",)},
}

# Longer resident (or neighbouring-customer) lines in languages other than English.
OTHER_LINES: dict[str, tuple[str, ...]] = {
    "vi": ("Xin chào, tôi mới chuyển đến đây tuần trước.", "Đây là thẻ cư trú và hộ chiếu của tôi.",
           "Tôi cần một bản sao phiếu cư trú.", "Xin lỗi, chị có thể nói chậm hơn không?",
           "Mất bao lâu ạ?", "Tôi có thể trả tiền ở cửa hàng tiện lợi không?"),
    "pt": ("Bom dia, eu me mudei para cá na semana passada.",
           "Aqui estão o meu cartão de residência e o meu passaporte.",
           "Eu preciso de uma cópia do atestado de residência.",
           "Desculpe, pode falar mais devagar?", "Quanto tempo demora?",
           "Posso pagar na loja de conveniência?"),
    "es": ("Buenos días, me mudé aquí la semana pasada.",
           "Aquí tiene mi tarjeta de residencia y mi pasaporte.",
           "Necesito una copia del certificado de residencia.",
           "Perdón, ¿puede hablar más despacio?", "¿Cuánto tiempo tarda?",
           "¿Puedo pagar en una tienda de conveniencia?"),
    "id": ("Selamat siang, saya baru pindah ke sini minggu lalu.", "Ini kartu residen dan paspor saya.",
           "Saya perlu salinan surat keterangan domisili.", "Maaf, bisa bicara lebih pelan?",
           "Berapa lama prosesnya?", "Apakah saya bisa bayar di minimarket?"),
    "ne": ("नमस्ते, म गएको हप्ता यहाँ सरेँ।", "यो मेरो निवास कार्ड र राहदानी हो।",
           "मलाई निवास प्रमाणपत्रको एउटा प्रति चाहिन्छ।", "माफ गर्नुहोस्, अलि बिस्तारै बोल्नुहोस्।",
           "कति समय लाग्छ?", "म कन्भिनियन्स स्टोरमा तिर्न सक्छु?"),
    "zh": ("你好，我上个星期刚搬到这里。", "这是我的在留卡和护照。", "我需要一份住民票。",
           "对不起，请您说慢一点。", "需要多长时间？", "可以在便利店付款吗？"),
    "ko": ("안녕하세요, 지난주에 이사 왔어요.", "여기 재류카드하고 여권이에요.", "주민표 한 통 필요해요.",
           "죄송하지만 천천히 말씀해 주세요.", "얼마나 걸려요?"),
    "th": ("สวัสดีครับ ผมเพิ่งย้ายมาที่นี่เมื่อสัปดาห์ที่แล้ว", "นี่คือบัตรผู้พำนักและหนังสือเดินทางของผม",
           "ผมต้องการสำเนาทะเบียนบ้านหนึ่งฉบับ", "ขอโทษครับ ช่วยพูดช้าๆ หน่อยได้ไหมครับ"),
}

# Other resident lines for the held-out counters (catalog.farfield_scenes(held_out=True)): phrases
# nothing was tuned on, none of them in OTHER_LINES or the ASR tests' sentences.
HELD_OUT_LINES: dict[str, tuple[str, ...]] = {
    "es": ("Hola, vengo a hacer el cambio de domicilio.", "¿Qué documentos tengo que traer?",
           "¿Hasta qué hora atienden hoy?", "¿Dónde tengo que firmar?",
           "Mi familia también necesita registrarse.", "¿Me lo puede escribir en este papel, por favor?"),
    "pt": ("Oi, eu vim fazer a mudança de endereço.", "Quais documentos eu preciso trazer?",
           "Até que horas vocês atendem hoje?", "Onde eu tenho que assinar?",
           "A minha família também precisa se registrar.", "Pode escrever neste papel, por favor?"),
    "zh": ("您好，我来办理地址变更。", "需要带什么材料？", "这个窗口今天开到几点？", "请问在哪里签名？",
           "我的家人也需要登记。", "能请您写在这张纸上吗？"),
    "vi": ("Chào chị, tôi đến để đăng ký thay đổi địa chỉ.", "Tôi cần mang những giấy tờ gì?",
           "Hôm nay quầy này làm việc đến mấy giờ?", "Tôi ký tên ở đâu ạ?",
           "Gia đình tôi cũng cần đăng ký.", "Chị có thể viết ra giấy giúp tôi không?"),
    "ko": ("안녕하세요, 주소 변경하러 왔어요.", "어떤 서류를 가져와야 해요?", "오늘 몇 시까지 해요?",
           "어디에 서명하면 돼요?", "가족도 등록해야 해요.", "이 종이에 써 주실 수 있어요?"),
}

# Resident voices per language: Kokoro v1.0's natural voices where it speaks the language (US and
# GB English, female and male; all of its Spanish and Brazilian Portuguese; Mandarin), espeak-ng
# (variants = other speakers) only where it does not: Whisper cannot tell robotic es/pt/zh/ko apart.
RESIDENT_VOICES: dict[str, tuple[str, ...]] = {
    "en": ("af_heart", "bm_george", "bf_emma", "am_michael", "af_bella", "bm_fable", "bf_isabella",
           "am_fenrir"),
    "es": ("ef_dora", "em_alex", "em_santa"), "pt": ("pf_dora", "pm_alex", "pm_santa"),
    "zh": ("zf_xiaoyi", "zm_yunjian", "zf_xiaoxiao", "zm_yunxi"),
    "vi": ("vi+f2",), "id": ("id+m3",), "ne": ("ne",), "ko": ("ko+m3",),
}
# Customers at the neighbouring counters (voice, language); none is a standard scene's resident,
# so place_talkers draws the standard scenes' geometry as it always has.
BABBLE_VOICES: tuple[tuple[str, str], ...] = (
    ("am_puck", "en"), ("ko+f2", "ko"), ("th", "th"), ("pf_dora", "pt"), ("vi+f4", "vi"),
    ("zm_yunyang", "zh"), ("em_alex", "es"),
)
ENGLISH_BABBLE = tuple(t for _n, _v, turns in TOPICS for s, t in turns
                       if s == "resident" and not t.startswith("@"))

DEMO_TURNS: tuple[tuple[str, str], ...] = (  # short lines: the bundled FLAC stays ~2 MB
    ("staff", "こんにちは。ご用件をどうぞ。"),
    ("resident", "Hello. I need to register my new address."),
    ("staff", "転入届ですね。在留カードはありますか。"),
    ("resident", "Yes, here is my residence card."),
    ("staff", "住民票の写しも必要ですか。"),
    ("resident", "Yes, one copy, please."),
    ("staff", "手数料は三百円です。"),
    ("resident", "Here you are."),
    ("staff", "こちらが住民票の写しです。"),
    ("resident", "Thank you."),
)


def staff_lines_for_voice(voice: str) -> tuple[str, ...]:
    """Long staff lines every topic spoken by `voice` (a neighbouring clerk's babble pool)."""
    return tuple(t for _n, v, turns in TOPICS if v == voice
                 for s, t in turns if s == "staff" and not t.startswith("@"))


def babble_pool(voice: str, lang: str) -> tuple[str, ...]:
    if lang == "ja":
        return staff_lines_for_voice(voice)
    return ENGLISH_BABBLE if lang == "en" else OTHER_LINES[lang]


def dialogue(topic: int, resident_voice: str, resident_lang: str,
             rng: np.random.Generator, held_out: bool = False) -> tuple[Line, ...]:
    """The topic's turns with short replies picked by `rng`, resident in `resident_lang`
    (outside English, lines from OTHER_LINES, or HELD_OUT_LINES when `held_out`)."""
    _name, staff_voice, turns = TOPICS[topic]
    shorts = SHORT_REPLIES[resident_lang]
    others = (HELD_OUT_LINES if held_out else OTHER_LINES).get(resident_lang, ())
    k = int(rng.integers(len(others))) if others else 0  # where the cycle of lines starts
    out: list[Line] = []
    for side, text in turns:
        if side == "staff":
            if text == "@ack":
                text = STAFF_ACKS[int(rng.integers(len(STAFF_ACKS)))]
            out.append(("staff", "ja", text, staff_voice))
            continue
        if text.startswith("@"):
            options = shorts[text[1:]]
            text = options[int(rng.integers(len(options)))]
        elif resident_lang != "en":
            text, k = others[k % len(others)], k + 1
        out.append(("resident", resident_lang, text, resident_voice))
    return tuple(out)


def demo_dialogue(staff_voice: str = "jf_alpha", resident_voice: str = "af_heart") -> tuple[Line, ...]:
    return tuple((s, "ja" if s == "staff" else "en", t, staff_voice if s == "staff" else resident_voice)
                 for s, t in DEMO_TURNS)
