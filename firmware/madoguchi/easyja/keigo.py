"""Productive keigo patterns, found by the tagger and conjugated, after the phrase rules of rules.json.

Phrase rules cover fixed words (承る, ご不明な点); these patterns cover every verb:
  お/ご + verb + いただく   → て-form + いただく (the rules then make a request of it);
      いただける → can (ご利用いただけます → 利用できます), いただかない → ない, いただき、→ て、
  お/ご + verb + になる     → the verb in なる's form (お受け取りになって → 受け取って)
  お/ご + verb + ください   → て-form + ください (お尋ねください → 尋ねてください)
  お + verb + する/いたす   → the verb in する's form (お送りします → 送ります)
  verb + れる/られる before 方/人/とき/場合/際 → plain (出される場合 → 出す場合: honorific,
      not passive, when it describes the resident)
  お + verb + のうえ、→ て-form (お持ちのうえ → 持って); verb + ますと → dictionary form + と;
  verb + てしまう → the verb alone (止まってしまいます → 止まります: the regret is lost, the fact kept)
  行う → する (UniDic tells 行う from 行く); verb + ことになっています → ます form.
"""

from __future__ import annotations

from dataclasses import replace

from .analyse import Token, rewrite
from .conjugate import dictionary_form, masu_stem, nai_stem, potential_stem, ta_form, te_form

_PERSON_OR_CASE = frozenset({"方", "人", "とき", "時", "場合", "際", "ため"})
# verbs whose れる at the counter is a real passive: 番号を呼ばれた方 (the ones who were called)
_PASSIVE = frozenset({"呼ぶ", "言う", "頼む"})
_I_TO_U = dict(zip("いきぎしちにびみり", "うくぐすつぬぶむる"))


def _as_verb(tok: Token) -> Token | None:
    """The verb behind お + word: a verb stem, or a noun that is one (受け取り, 支払い, 届け)."""
    if tok.pos1 == "動詞" and tok.cform.startswith("連用形"):
        return tok
    if tok.pos1 != "名詞" or tok.pos3 == "サ変可能" or len(tok.surface) < 2 or not "\u4e00" <= tok.surface[0] <= "\u9fff":
        return None
    last = tok.surface[-1]
    if last in _I_TO_U:  # 受け取り → 受け取る (五段)
        return replace(tok, pos1="動詞", ctype="五段", cform="連用形-一般", lemma=tok.surface[:-1] + _I_TO_U[last])
    if last in "えけげせてねべめれ":  # 届け → 届ける (一段)
        return replace(tok, pos1="動詞", ctype="下一段", cform="連用形-一般", lemma=tok.surface + "る")
    return None


def _like(verb: Token | None, noun: str, helper: Token, nxt: Token | None) -> tuple[str, int]:
    """The verb (or サ変 noun + する) conjugated as ``helper`` is; and how many tokens after it it ate."""
    if helper.cform.startswith("連用形") and nxt is not None and nxt.surface in ("て", "で", "た", "だ"):
        if verb is None:
            return noun + "し" + nxt.surface.replace("で", "て").replace("だ", "た"), 1
        return (te_form(verb) if nxt.surface in ("て", "で") else ta_form(verb)), 1
    if helper.cform.startswith(("連用形", "未然形")):
        return (noun + "し" if verb is None else masu_stem(verb)), 0
    if helper.cform.startswith(("終止形", "連体形")):
        return (noun + "する" if verb is None else dictionary_form(verb)), 0
    return "", -1  # other forms (なれば …) are rare: leave them


def _itadaku(verb: Token | None, noun: str, helper: Token, after: str) -> str | None:
    """The verb (or サ変 noun) with いただく's meaning kept in plain words, or None to keep いただく."""
    if helper.surface.endswith("け") and not after.startswith(("ますか", "ませんか", "ますでしょうか")):
        return noun + "でき" if verb is None else potential_stem(verb)  # …いただけます: you can
    if helper.surface.endswith("か"):
        return noun + "し" if verb is None else nai_stem(verb)  # …いただかないと: unless you
    if helper.surface.endswith("き") and after.startswith("、"):
        return noun + "して" if verb is None else te_form(verb)  # …いただき、: a chain
    return None


def _honorific(toks: list[Token], i: int) -> tuple[int, str] | None:
    """(tokens replaced, new text) for a pattern that starts at ``toks[i]``, or None."""
    tok, nxt = toks[i], toks[i + 1] if i + 1 < len(toks) else None
    at = lambda k: toks[k] if k < len(toks) else None
    if tok.pos1 == "接頭辞" and tok.lemma == "御" and nxt is not None and nxt.lemma not in ("願う", "願い"):
        verb = _as_verb(nxt)
        noun = nxt.surface if nxt.pos3 == "サ変可能" else ""
        if verb is None and not noun:
            return None
        helper = at(i + 2)
        if helper is None:
            return None
        if helper.lemma == "頂く" and (plain_verb := _itadaku(verb, noun, helper, _after(toks, i + 3))) is not None:
            return 3, plain_verb
        if helper.lemma in ("頂く", "下さる"):
            return 2, noun + "して" if noun else te_form(verb)
        if helper.surface == "の" and verb is not None and (ue := at(i + 3)) is not None and ue.lemma == "上":
            return 4, te_form(verb)  # お持ちのうえ、→ 持って、
        if helper.surface == "に" and (naru := at(i + 3)) is not None and naru.lemma == "成る":
            text, ate = _like(verb, noun, naru, at(i + 4))
            return (4 + ate, text) if ate >= 0 else None
        if helper.lemma in ("為る", "致す") and noun:  # ご案内します → 案内します (いたす: a rule)
            return 2, noun
        if helper.lemma in ("為る", "致す") and tok.surface == "お" and verb is not None:
            text, ate = _like(verb, "", helper, at(i + 3))
            return (3 + ate, text) if ate >= 0 else None
        return None
    if tok.pos1 == "動詞" and nxt is not None and nxt.surface in ("て", "で") and (helper := at(i + 2)) is not None and helper.lemma == "頂く":
        plain_verb = _itadaku(tok, "", helper, _after(toks, i + 3))
        return None if plain_verb is None else (3, plain_verb)
    if tok.pos1 == "動詞" and nxt is not None and nxt.surface in ("て", "で") and (shimau := at(i + 2)) is not None and shimau.lemma in ("仕舞う", "しまう"):
        text, ate = _like(tok, "", shimau, at(i + 3))  # 止まってしまいます → 止まります: one verb, not two
        return (3 + ate, text) if ate >= 0 else None
    if tok.pos1 == "動詞" and nxt is not None and nxt.lemma == "ます" and (to := at(i + 2)) is not None and to.surface == "と":
        return 2, dictionary_form(tok)  # 過ぎますと → 過ぎると
    if tok.pos1 == "動詞" and nxt is not None and nxt.lemma in ("れる", "られる") and tok.lemma not in _PASSIVE:
        after = at(i + 2)
        if after is not None and after.lemma == "たい":
            return 2, masu_stem(tok)  # 登録されたい → 登録したい
        if after is not None and after.lemma == "た" and (at(i + 3) and at(i + 3).surface in _PERSON_OR_CASE):
            return 3, ta_form(tok)
        if after is not None and after.surface in _PERSON_OR_CASE and nxt.cform.startswith("連体形"):
            return 2, dictionary_form(tok)
        return None
    if tok.lemma == "行う" and tok.pos1 == "動詞":
        text, ate = _like(None, "", tok, nxt)
        return (1 + ate, text) if ate >= 0 else None
    if tok.pos1 == "動詞" and "".join(t.surface for t in toks[i + 1 : i + 7]) in ("ことになっています", "ことになっております"):
        return 7, masu_stem(tok) + "ます"
    return None


def _after(toks: list[Token], k: int) -> str:
    return "".join(t.surface for t in toks[k : k + 4])


def plain(text: str) -> str:
    """Honorific and humble verb forms as plain polite ones (if the tagger rewrote a character,
    the phrase rules alone must do)."""
    return rewrite(text, lambda tokens, _starts, i: _honorific(tokens, i))
