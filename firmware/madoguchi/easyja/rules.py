"""Keigo and cushion words rewritten into plain polite Japanese, from data/easyja/rules.json.

Rules are ordered regular expressions over the whole utterance (specific ones first: ご記入くださ
い before the generic ご＋漢語＋ください). ``{NAME}`` in a pattern is replaced by the file's macro
of that name, so the many ways of asking (いただけますか, ください, をお願いします …) are written once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from .datafile import load, text
from .errors import EasyJapaneseError

log = logging.getLogger(__name__)

FORMAT = "madoguchi-easyja-rules/1"
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "data" / "easyja" / "rules.json"
_MACRO = re.compile(r"\{([A-Z_]+)\}")


@dataclass(frozen=True)
class Rule:
    rule_id: str
    pattern: re.Pattern[str]
    replace: str
    reason: str


def load_rules(path: Path = DEFAULT_PATH) -> tuple[Rule, ...]:
    data, entries = load(path, FORMAT, "rules")
    macros = data.get("macros", {})
    if not isinstance(macros, dict) or not all(isinstance(v, str) for v in macros.values()):
        raise EasyJapaneseError(f"{path}: \"macros\" must map NAMES to regular expressions")
    rules, seen = [], set()
    for number, entry in enumerate(entries):
        where = f"rules[{number}] ({entry.get('id', '?')})"
        rule_id = text(path, where, entry, "id")
        if rule_id in seen:
            raise EasyJapaneseError(f"{path}: {where}: duplicate id; each rule needs its own")
        seen.add(rule_id)
        source = text(path, where, entry, "pattern", allowed="a regular expression")
        replace = entry.get("replace")
        if not isinstance(replace, str):
            raise EasyJapaneseError(f"{path}: {where}: \"replace\" must be a string (\"\" drops the match)")
        reason = text(path, where, entry, "reason", allowed="a short reason for the rule")
        unknown = [m for m in _MACRO.findall(source) if m not in macros]
        if unknown:
            raise EasyJapaneseError(f"{path}: {where}: unknown macro {{{unknown[0]}}}; defined: {', '.join(sorted(macros)) or 'none'}")
        expanded = _MACRO.sub(lambda m: macros[m.group(1)], source)
        try:
            pattern = re.compile(expanded)
            pattern.sub(replace, "")  # a bad group reference in replace shows here
        except re.error as err:
            raise EasyJapaneseError(f"{path}: {where}: not a valid regular expression or replacement ({err})") from err
        rules.append(Rule(rule_id, pattern, replace, reason))
    return tuple(rules)


def apply(rules: tuple[Rule, ...], text_in: str) -> str:
    out = text_in
    for rule in rules:
        new = rule.pattern.sub(rule.replace, out)
        if new != out:
            log.debug("easy Japanese rule %s: %s -> %s", rule.rule_id, out, new)
            out = new
    return out
