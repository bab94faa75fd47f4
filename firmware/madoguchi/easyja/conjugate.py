"""The few verb forms that rewriting and splitting need (ます-stem, て-, た-, dictionary form, from
UniDic's lemma), and a clause turned into a sentence with a polite ending."""

from __future__ import annotations

from .analyse import Token

_I_ROW = dict(zip("うくぐすつぬぶむる", "いきぎしちにびみり"))
_POLITE = ("ます", "です")
_TE = {"く": "いて", "ぐ": "いで", "す": "して", "つ": "って", "る": "って", "う": "って", "ぬ": "んで", "ぶ": "んで", "む": "んで"}


def _written_lemma(token: Token) -> str:
    """The dictionary form as the text writes the verb (UniDic's lemma may use other kanji: 為る, 成る)."""
    lemma = token.lemma.split("-")[0]
    # keep the surface's own spelling: only the conjugated tail changes (書い → 書く, なっ → なる)
    stem = token.surface[:-1] if len(token.surface) > 1 else ""
    return stem + lemma[-1] if lemma else token.surface


def masu_stem(token: Token) -> str:
    """連用形 for ます: 書く → 書き, 食べる → 食べ, する → し, 来る → 来."""
    if token.ctype.startswith("サ行変格"):
        return token.surface[:-1] + "し" if token.surface.endswith(("す", "し", "さ", "せ")) else "し"
    if token.ctype.startswith("カ行変格"):
        return "来" if token.surface.startswith("来") else "き"
    if token.cform.startswith("連用形-一般") or not token.ctype.startswith("五段") and token.cform.startswith(("未然形", "連用形")):
        return token.surface  # 一段: 受け(られる) is already the stem
    dictionary = _written_lemma(token)
    if token.ctype.startswith("五段"):
        return dictionary[:-1] + _I_ROW.get(dictionary[-1], dictionary[-1])
    return dictionary[:-1]  # 一段: drop る


def te_form(token: Token) -> str:
    """て-form: 書く → 書いて, 待つ → 待って, 行く → 行って, 見る → 見て."""
    if token.ctype.startswith("サ行変格"):
        return masu_stem(token) + "て"
    if token.ctype.startswith("カ行変格"):
        return masu_stem(token) + "て"
    if token.ctype.startswith("五段"):
        dictionary = _written_lemma(token)
        if token.lemma in ("行く", "逝く"):
            return dictionary[:-1] + "って"
        return dictionary[:-1] + _TE.get(dictionary[-1], "って")
    return masu_stem(token) + "て"


def dictionary_form(token: Token) -> str:
    """辞書形 as the text writes it: 持ち → 持つ, 尋ね → 尋ねる, し → する."""
    if token.ctype.startswith("サ行変格"):
        return masu_stem(token)[:-1] + "する"
    if token.ctype.startswith("カ行変格"):
        return "来る" if token.surface.startswith("来") else "くる"
    if token.ctype.startswith("五段"):
        if token.cform.startswith("連用形-一般"):  # 持ち: the lemma's last kana replaces the i-row one
            return token.surface[:-1] + token.lemma.split("-")[0][-1]
        return _written_lemma(token)
    return masu_stem(token) + "る"


_A_ROW = dict(zip("うくぐすつぬぶむる", "わかがさたなばまら"))
_E_ROW = dict(zip("うくぐすつぬぶむる", "えけげせてねべめれ"))


def nai_stem(token: Token) -> str:
    """未然形 for ない: 出す → 出さ, 食べる → 食べ, する → し, 来る → こ."""
    if token.ctype.startswith("サ行変格"):
        return masu_stem(token)
    if token.ctype.startswith("カ行変格"):
        return "来" if token.surface.startswith("来") else "こ"
    if token.ctype.startswith("五段"):
        dictionary = dictionary_form(token)
        return dictionary[:-1] + _A_ROW.get(dictionary[-1], dictionary[-1])
    return masu_stem(token)


def potential_stem(token: Token) -> str:
    """可能形 before ます/る: 使う → 使え, 見る → 見られ, する → でき, 来る → 来られ."""
    if token.ctype.startswith("サ行変格"):
        return masu_stem(token)[:-1] + "でき"
    if token.ctype.startswith("カ行変格"):
        return nai_stem(token) + "られ"
    if token.ctype.startswith("五段"):
        dictionary = dictionary_form(token)
        return dictionary[:-1] + _E_ROW.get(dictionary[-1], dictionary[-1])
    return masu_stem(token) + "られ"


def ta_form(token: Token) -> str:
    """た-form: the て-form with た (書いた, 読んだ)."""
    te = te_form(token)
    return te[:-1] + ("だ" if te.endswith("で") else "た")


def polite_end(clause: list[Token], *, request: bool, past: bool) -> str:
    """The clause as a sentence of its own, ending politely."""
    if not clause:
        return ""
    body = "".join(t.surface for t in clause[:-1])
    last = clause[-1]
    if last.lemma == "ます" and last.surface == "まし":  # 混んでおりまして、 → …ます。
        return body + "ます"
    if any(t.lemma in _POLITE for t in clause[-3:]):
        return body + last.surface
    if last.pos1 == "助動詞" and last.lemma in ("だ",):  # 必要な(ので) → 必要です
        return body + "です"
    if last.pos1 == "助動詞" and last.lemma == "た" and len(clause) > 1 and clause[-2].pos1 == "動詞":
        return "".join(t.surface for t in clause[:-2]) + masu_stem(clause[-2]) + "ました"
    if last.pos1 == "助動詞" and last.lemma == "ない" and len(clause) > 1 and clause[-2].pos1 == "動詞":
        return "".join(t.surface for t in clause[:-2]) + masu_stem(clause[-2]) + "ません"
    if last.pos1 == "動詞":
        if request:
            return body + te_form(last) + "ください"
        return body + masu_stem(last) + ("ました" if past else "ます")
    if last.pos1 == "形容詞":
        return body + last.lemma + "です" if last.cform.startswith("連用形") else body + last.surface + "です"
    return body + last.surface + "です"
