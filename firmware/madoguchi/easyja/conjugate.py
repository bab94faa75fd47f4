"""The few verb forms that splitting a sentence needs: ます-stem and て-form from UniDic's lemma."""

from __future__ import annotations

from .analyse import Token

_I_ROW = dict(zip("うくぐすつぬぶむる", "いきぎしちにびみり"))
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
    if token.cform.startswith("連用形-一般"):
        return token.surface
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
