"""Per-language word lists behind textnorm.py and fuzzy.py (kept apart so the logic stays readable).

All entries are in the form ``textnorm.fold`` produces: NFKC, case-folded, apostrophes removed.
They are deliberately small and conservative: a word missing here only makes a fuzzy match
less likely, never more (except the light lists, which are limited to words that carry no
content a resident could act on).
"""

from __future__ import annotations


def _longest_first(table: dict[str, list[str]]) -> dict[str, tuple[str, ...]]:
    return {lang: tuple(sorted(items, key=len, reverse=True)) for lang, items in table.items()}


_ZH_TRAD = "請謝們這個嗎號碼說話會來簽寫證書處裡裏麼幾錢護險國費稅邊點兒時間問題讓對聽沒別還為給帶開關現張轉續辦記將鐘廁廳應該單據戶補貼報遷親務與歡幫識語譯員傳達"
_ZH_SIMP = "请谢们这个吗号码说话会来签写证书处里里么几钱护险国费税边点儿时间问题让对听没别还为给带开关现张转续办记将钟厕厅应该单据户补贴报迁亲务与欢帮识语译员传达"
assert len(_ZH_TRAD) == len(_ZH_SIMP)

# Spellings that mean the same thing. Japanese: kanji versus kana forms Whisper writes either way.
# Chinese: Whisper often answers in traditional characters; the phrasebook is simplified.
CANON: dict[str, tuple[tuple[str, str], ...]] = {
    "ja": (
        ("下さい", "ください"), ("頂き", "いただき"), ("頂け", "いただけ"), ("頂く", "いただく"), ("致し", "いたし"),
        # politeness levels of the same sentence (humble/polite forms of ます and です)
        ("いたしま", "しま"), ("でしょうか", "ですか"), ("くださいませ", "ください"), ("でございます", "です"),
        ("御願い", "お願い"), ("御座い", "ござい"), ("分かり", "わかり"), ("分から", "わから"), ("分かっ", "わかっ"),
        ("分かる", "わかる"), ("解り", "わかり"), ("判り", "わかり"), ("有り難う", "ありがとう"), ("有難う", "ありがとう"),
        ("宜しく", "よろしく"), ("宜しい", "よろしい"), ("出来", "でき"), ("一寸", "ちょっと"), ("沢山", "たくさん"),
        ("何処", "どこ"), ("此処", "ここ"), ("此方", "こちら"), ("迄", "まで"), ("ゴミ", "ごみ"), ("ハンコ", "はんこ"),
        ("判子", "はんこ"), ("すいません", "すみません"), ("無くし", "なくし"), ("失くし", "なくし"), ("子供", "子ども"), ("欲しい", "ほしい"), ("要ら", "いら"), ("要り", "いり"), ("お手洗い", "トイレ"),
    ),
    "zh": tuple(zip(_ZH_TRAD, _ZH_SIMP)),
    "en": (
        ("can't", "can not"), ("cannot", "can not"), ("won't", "will not"), ("n't", " not"), ("i'm", "i am"),
        ("'re", " are"), ("'ll", " will"), ("'ve", " have"), ("okay", "ok"),
    ),
}

# Hesitations at the start of an utterance. Strong ones are dropped even when run into the next
# word (where words are not spaced); weak ones are also ordinary words (あの = "that", 저 = "I")
# and are dropped only when a pause or comma sets them off.
FILLERS_STRONG = _longest_first({
    "ja": ["えーっと", "ええっと", "えーと", "ええと", "えっと", "あのー", "あのう", "そのー", "うーん", "えー", "んー", "あー"],
    "en": ["um", "uh", "uhm", "erm", "er", "hmm", "ah"],
    "es": ["eh", "ehm", "em", "mmm"],
    "pt": ["hum", "ahn", "eh", "éh"],
    "tl": ["uhm", "ahh", "eh"],
    "id": ["eh", "em", "hmm", "eee"],
    "vi": ["ờ", "ừm", "ừ"],
    "ne": ["अँ", "उम"],
    "th": ["เอ่อ", "เอิ่ม", "อืม"],
    "zh": ["嗯", "呃"],
})
FILLERS_WEAK = _longest_first({
    "ja": ["すみませんが", "すみません", "あの", "じゃあ", "では", "その", "まあ"],
    "en": ["so", "well", "ok", "excuse me"],
    "es": ["este", "pues", "bueno", "oiga", "disculpe", "perdón"],
    "pt": ["então", "bom", "olha", "com licença", "desculpe"],
    "tl": ["ano"],
    "id": ["anu", "permisi", "maaf"],
    "vi": ["dạ", "xin lỗi"],
    "ne": ["हजुर", "माफ गर्नुहोस्"],
    "th": ["อ่า", "ขอโทษครับ", "ขอโทษค่ะ", "ขอโทษ"],
    "my": ["အင်း", "အာ", "တစ်ဆိတ်လောက်"],
    "ko": ["음", "어", "저기요", "저기"],
    "zh": ["那个", "请问"],
})
# Sentence-final softeners and gendered politeness particles: same sentence with or without them.
TRAILING = _longest_first({
    "ja": ["よね", "ねー", "よー", "ねえ", "ね", "よ", "ー"],  # ー: a drawn-out last syllable (ありがとうございましたー)
    "th": ["ครับผม", "ครับ", "คับ", "ค่ะ", "คะ", "ค่า", "นะ", "จ้ะ", "จ้า", "จ๊ะ"],
    "vi": ["ạ", "nhé", "nha", "nhá"],
    "my": ["ခင်ဗျာ", "ခင်ဗျား", "ရှင့်", "ရှင်", "နော်"],
    "zh": ["啊", "呀", "哦", "哈", "呗"],
    "ne": ["हजुर"],
})
# Politeness markers removed wherever they stand.
STRIP_WORDS: dict[str, frozenset[str]] = {"tl": frozenset({"po", "ho"})}

# Negation markers: an utterance and a phrase must contain the same ones (要る/要らない).
NEGATIONS: dict[str, frozenset[str]] = {
    "ja": frozenset({"ない", "ません", "なく", "なかっ", "ず", "いいえ", "だめ", "ダメ", "駄目", "不要", "無", "未", "非"}),
    "zh": frozenset({"不", "没", "别", "无", "非", "未", "勿"}),
    "ko": frozenset({"않", "안", "못", "없", "아니", "마세요", "말고", "말아"}),
    "th": frozenset({"ไม่", "อย่า", "ห้าม"}),
    "my": frozenset({"ဘူး", "မဟုတ်", "မလို", "မရ"}),
    "en": frozenset({"not", "no", "never", "nothing", "none", "nobody", "nowhere", "without", "neither", "nor"}),
    "es": frozenset({"no", "nunca", "nada", "nadie", "ningún", "ninguno", "ninguna", "tampoco", "sin", "ni"}),
    "pt": frozenset({"não", "nunca", "nada", "ninguém", "nenhum", "nenhuma", "sem", "nem"}),
    "tl": frozenset({"hindi", "wala", "walang", "huwag", "wag", "ayaw", "di"}),
    "id": frozenset({"tidak", "tak", "bukan", "belum", "jangan", "nggak", "gak", "enggak", "ga", "tanpa"}),
    "vi": frozenset({"không", "chưa", "đừng", "chẳng", "chả", "ko"}),
    "ne": frozenset({"छैन", "छैनन्", "होइन", "हैन", "थिएन", "भएन", "नाइँ", "पर्दैन", "सक्दिन", "सक्दैन", "बुझिन", "बुझिनँ", "बुझ्दिन", "हुँदैन", "चाहिँदैन", "चाहिंदैन", "आउँदैन"}),
}

_JA_READINGS = {"いち": 1, "いっ": 1, "に": 2, "さん": 3, "よん": 4, "ご": 5, "ろく": 6, "なな": 7, "はち": 8, "はっ": 8, "きゅう": 9, "じゅう": 10, "じゅっ": 10}
_JA_COUNTERS = "(?:ばん|まい|つう|えん|かい|にん|ほん|ふん|ぷん|ひゃく|せん|まん)"
# Numbers spelled in kana (Whisper writes 一つ/1つ/ひとつ): regular expressions and their values.
JA_KANA_NUMBERS: tuple[tuple[str, int], ...] = (
    ("ひとつ", 1), ("ふたつ", 2), ("みっつ", 3), ("よっつ", 4), ("いつつ", 5), ("むっつ", 6), ("ななつ", 7),
    ("やっつ", 8), ("ここのつ", 9), ("ひとり", 1), ("ふたり", 2),
    *((f"{reading}(?={_JA_COUNTERS})", value) for reading, value in _JA_READINGS.items()),
)

NUMBER_WORDS: dict[str, dict[str, int]] = {
    "en": {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
           "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "fifty": 50, "hundred": 100, "thousand": 1000,
           "once": 1, "twice": 2, "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5},
    "es": {"cero": 0, "uno": 1, "una": 1, "un": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7, "ocho": 8,
           "nueve": 9, "diez": 10, "veinte": 20, "cien": 100, "ciento": 100, "doscientos": 200, "trescientos": 300, "quinientos": 500,
           "mil": 1000, "primero": 1, "primera": 1, "segundo": 2, "segunda": 2, "tercero": 3, "tercera": 3},
    "pt": {"zero": 0, "um": 1, "uma": 1, "dois": 2, "duas": 2, "três": 3, "quatro": 4, "cinco": 5, "seis": 6, "sete": 7, "oito": 8,
           "nove": 9, "dez": 10, "vinte": 20, "cem": 100, "cento": 100, "duzentos": 200, "trezentos": 300, "quinhentos": 500,
           "mil": 1000, "primeiro": 1, "primeira": 1, "segundo": 2, "segunda": 2, "terceiro": 3, "terceira": 3},
    "tl": {"isa": 1, "isang": 1, "dalawa": 2, "dalawang": 2, "tatlo": 3, "tatlong": 3, "apat": 4, "lima": 5,
           "limang": 5, "anim": 6, "pito": 7, "walo": 8, "siyam": 9, "sampu": 10, "sampung": 10, "daan": 100, "raan": 100,
           "libo": 1000, "una": 1, "ikalawa": 2, "ikatlo": 3, "uno": 1, "dos": 2, "tres": 3},
    "id": {"nol": 0, "satu": 1, "dua": 2, "tiga": 3, "empat": 4, "lima": 5, "enam": 6, "tujuh": 7, "delapan": 8, "sembilan": 9,
           "sepuluh": 10, "seratus": 100, "ratus": 100, "seribu": 1000, "ribu": 1000, "pertama": 1, "kedua": 2, "ketiga": 3},
    "vi": {"một": 1, "mốt": 1, "hai": 2, "ba": 3, "bốn": 4, "tư": 4, "năm": 5, "lăm": 5, "sáu": 6, "bảy": 7, "tám": 8,
           "chín": 9, "mười": 10, "trăm": 100, "nghìn": 1000, "ngàn": 1000, "nhất": 1},
    "ne": {"एक": 1, "दुई": 2, "तीन": 3, "चार": 4, "पाँच": 5, "छ": 6, "सात": 7, "आठ": 8, "नौ": 9, "दस": 10, "बीस": 20,
           "सय": 100, "हजार": 1000, "पहिलो": 1, "दोस्रो": 2, "तेस्रो": 3},
}

# What a fuzzy match may add, drop or swap without changing what is asked or said.
# Chinese and Korean: function characters only (particles, politeness); content characters never.
LIGHT_CHARS: dict[str, frozenset[str]] = {
    "zh": frozenset("的了呢吧啊呀哦嗯您你请麻烦"),
    "ko": frozenset("은는을를에의도좀요께서"),
}
LIGHT_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset({"please", "the", "a", "an", "just", "ok", "so", "well", "sir", "madam", "maam", "um", "uh", "oh", "kindly"}),
    "es": frozenset({"por", "favor", "el", "la", "los", "las", "lo", "pues", "bueno", "eh", "señor", "señora"}),
    "pt": frozenset({"por", "favor", "o", "a", "os", "as", "então", "bom", "senhor", "senhora", "aí", "né"}),
    "tl": frozenset({"po", "ho", "naman", "nga", "eh"}),
    "id": frozenset({"tolong", "silakan", "mohon", "ya", "pak", "bu", "ibu", "bapak", "dong", "sih", "deh", "nah", "eh"}),
    "vi": frozenset({"ạ", "à", "ơi", "nhé", "nha", "xin", "dạ"}),
    "ne": frozenset({"कृपया", "हजुर", "ल", "नि", "है", "त"}),
}
# Japanese demonstratives by distance: "write it here" and "write it there" differ by one kana,
# while ここ and こちら (plain and polite "here") are the same place.
JA_DEIXIS: dict[str, tuple[str, ...]] = {
    "near": ("こちら", "ここ", "これ", "この"),
    "middle": ("そちら", "そこ", "それ", "その"),
    "far": ("あちら", "あそこ", "あれ", "あの"),
    "which": ("どちら", "どこ", "どれ", "どの"),
}
