"""Vocabulary maps (CTranslate2 ``vmap.txt``): decode over a few thousand target tokens, not all.

A multilingual model scores its whole vocabulary at every output step: 128k tokens for M2M100,
256k for NLLB-200, which is a large share of decoding time on a CPU. Japanese output needs
kana, kanji and some Latin; Vietnamese output needs Latin letters with diacritics. Restricting
the output layer to the target language's tokens skips the rest of the matrix product.

**File format** (CTranslate2's): one rule per line, ``source n-gram<TAB>target tokens …``; the
line with an empty source side lists tokens that are always allowed. CTranslate2 allows, for a
batch, the union of the always line, the rules whose source n-gram occurs in any source of the
batch, the target prefix, and ``<unk> <s> </s>``.

**Per-target-language lines.** CTranslate2 loads one vmap per model and keys it by source tokens,
but M2M100 and NLLB name the *target* language only in the target prefix. So a line per target
language is keyed by a placeholder that is never a real token, ``<madoguchi-vmap:vi>``, and the
engine appends it (twice) to the longest source of the batch while ``max_input_length`` cuts it
off again before the encoder: CTranslate2 matches vmap rules on the source strings before
truncation. Twice, because a truncated source whose next-to-last token is ``</s>`` keeps its last
token (CTranslate2 does that for NLLB's legacy trailing language tag). The tests check that a
restricted translation equals the unrestricted one when the map allows every token it needs.

**Building one** (``build_vocabulary_map``, or ``python -m madoguchi.mt.vmap``): a language's
tokens are those its tokenizer produces on a sample of text in that language (the more text,
the better: a few thousand sentences, e.g. FLORES-200 dev/devtest, Tatoeba or the site's
phrasebook, on the machine that converts the model), plus every single-character piece of the
language's scripts (so any word can still be spelt, piece by piece), plus punctuation, digits,
symbols and special tokens (always allowed). ``max_tokens`` keeps the most frequent pieces.

A model folder may also ship a lexical vmap (rules keyed by real source tokens, no per-target
lines): the engine then uses it for every call.
"""

from __future__ import annotations

import argparse
import logging
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from madoguchi.files import atomic_write_text
from madoguchi.mt.errors import MtVocabularyMapError

log = logging.getLogger(__name__)

VMAP_FILE = "vmap.txt"
_KEY_PREFIX, _KEY_SUFFIX = "<madoguchi-vmap:", ">"
WORD_START = "\u2581"  # sentencepiece's word-boundary mark

# Unicode blocks of each day-one language's script(s); Latin-script languages share LATIN.
_LATIN = ((0x0041, 0x005A), (0x0061, 0x007A), (0x00C0, 0x024F), (0x1E00, 0x1EFF))
_HAN = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF))
SCRIPTS: dict[str, tuple[tuple[int, int], ...]] = {
    "ja": ((0x3040, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F), *_HAN),
    "zh": _HAN,
    "ko": ((0x1100, 0x11FF), (0x3130, 0x318F), (0xAC00, 0xD7AF)),
    "th": ((0x0E00, 0x0E7F),),
    "my": ((0x1000, 0x109F), (0xAA60, 0xAA7F)),
    "ne": ((0x0900, 0x097F),),
    **{lang: _LATIN for lang in ("en", "vi", "pt", "es", "tl", "id")},
}


def target_key(lang: str) -> str:
    """The placeholder source token that selects ``lang``'s line."""
    return f"{_KEY_PREFIX}{lang}{_KEY_SUFFIX}"


@dataclass(frozen=True)
class VocabularyMap:
    always: tuple[str, ...] = ()  # allowed in every restricted call
    by_target: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # ISO code -> allowed when translating into it
    by_source: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # source n-gram -> allowed when it occurs

    @property
    def per_target(self) -> bool:
        return bool(self.by_target)

    def text(self) -> str:
        lines = ["\t" + " ".join(self.always)]
        lines += [f"{target_key(lang)}\t{' '.join(tokens)}" for lang, tokens in sorted(self.by_target.items())]
        lines += [f"{ngram}\t{' '.join(tokens)}" for ngram, tokens in self.by_source.items()]
        return "\n".join(lines) + "\n"

    def write(self, path: Path) -> Path:
        atomic_write_text(Path(path), self.text())
        return Path(path)


def read_vocabulary_map(path: Path) -> VocabularyMap:
    """Parse a vmap.txt; a line without a tab, or a token with a tab or newline, is an error naming the line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise MtVocabularyMapError(f"{path}: cannot read the vocabulary map: {err}; fix: rebuild it (python -m madoguchi.mt.vmap) or delete it") from err
    always: list[str] = []
    by_target: dict[str, tuple[str, ...]] = {}
    by_source: dict[str, tuple[str, ...]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, tab, values = line.partition("\t")
        if not tab or "\t" in values:
            raise MtVocabularyMapError(f"{path}:{number}: expected 'source tokens<TAB>target tokens'; fix: rebuild it (python -m madoguchi.mt.vmap) or delete it")
        tokens = tuple(values.split())
        if not key:
            always.extend(tokens)
        elif key.startswith(_KEY_PREFIX) and key.endswith(_KEY_SUFFIX):
            by_target[key[len(_KEY_PREFIX):-len(_KEY_SUFFIX)]] = tokens
        else:
            by_source[key] = tokens
    return VocabularyMap(tuple(dict.fromkeys(always)), by_target, by_source)


def restrict_batch(sources: Sequence[list[str]], lang: str) -> tuple[list[list[str]], int]:
    """The batch with ``lang``'s key appended (twice) to its longest source, and the ``max_input_length`` that cuts it off again.

    One key is enough: CTranslate2 restricts the whole batch to one union of candidates.
    """
    longest = max(range(len(sources)), key=lambda i: len(sources[i]))
    batch = [list(s) for s in sources]
    batch[longest] += [target_key(lang)] * 2
    return batch, len(sources[longest])


def switching_targets_is_safe(vmap: VocabularyMap, vocabulary: Sequence[str], fixed: Collection[str], mapped: Mapping[str, Collection[str]], unk: str = "<unk>") -> bool:
    """Whether moving from one target language's restriction to another's is safe in CTranslate2 without a reset.

    CTranslate2 (4.8.5, and its main branch) maps token ids into the restricted output layer through a table that
    it never clears between two restricted calls and never overwrites (``_to_output_word_id.emplace``): a token
    keeps the position it had in the first restricted list it was in. Only the decoder's start token, the forced
    prefix and the end token go through that table (``mapped``: target language -> those tokens). If each of them
    has the same position in every language's sorted candidate list (``fixed`` = ``<unk> <s> </s>``, the always
    line, the language's line and its prefix), the stale table is still right; otherwise the engine must reset it
    with an unrestricted call before each switch.
    """
    index: dict[str, int] = {}
    for i, token in enumerate(vocabulary):
        index.setdefault(token, i)
    unk_id = index.get(unk, 0)

    def ids(tokens: Iterable[str]) -> set[int]:
        return {index.get(t, unk_id) for t in tokens}

    base = ids(fixed) | ids(vmap.always)
    positions: dict[int, set[int]] = {}
    mapped_ids = set().union(*(ids(tokens) for tokens in mapped.values())) if mapped else set()
    for lang, tokens in vmap.by_target.items():
        candidates = sorted(base | ids(tokens) | ids(mapped.get(lang, ())))
        for position, token_id in enumerate(candidates):
            if token_id in mapped_ids:
                positions.setdefault(token_id, set()).add(position)
    return all(len(p) == 1 for p in positions.values())


# ---------------------------------------------------------------------------------------------
# building a map


def is_common_token(token: str) -> bool:
    """Punctuation, digits, symbols and spaces only (with or without the word-start mark): allowed for every language."""
    body = token.replace(WORD_START, "")
    return not body or all(unicodedata.category(ch)[0] in "PNSZ" for ch in body)


def script_pieces(vocabulary: Iterable[str], lang: str) -> set[str]:
    """Single-character pieces (``x`` or ``▁x``) of ``lang``'s scripts: enough to spell any word."""
    ranges = SCRIPTS.get(lang, ())
    out = set()
    for token in vocabulary:
        body = token[1:] if token.startswith(WORD_START) else token
        if len(body) == 1 and any(lo <= ord(body) <= hi for lo, hi in ranges):
            out.add(token)
    return out


def language_inventory(encode: Callable[[str], list[str]], samples: Iterable[str]) -> Counter[str]:
    """How often each piece occurs when the tokenizer reads the sample text."""
    counts: Counter[str] = Counter()
    for line in samples:
        if line.strip():
            counts.update(encode(line.strip()))
    return counts


def build_vocabulary_map(vocabulary: Sequence[str], encode: Callable[[str], list[str]], samples: Mapping[str, Iterable[str]], *,
                         max_tokens: int | None = None, special_tokens: Collection[str] = ("<s>", "</s>", "<unk>")) -> VocabularyMap:
    """A per-target-language map: for each language in ``samples`` (ISO code -> lines of text in it), the pieces
    the tokenizer produced on its sample plus its script's single characters; punctuation, digits, symbols and
    ``special_tokens`` go on the always line. ``max_tokens`` bounds each language's list (always line included),
    keeping the most frequent sample pieces.
    """
    known = set(vocabulary)
    always = [t for t in vocabulary if t in special_tokens or is_common_token(t)]
    always_set = set(always)
    by_target: dict[str, tuple[str, ...]] = {}
    for lang, lines in samples.items():
        counts = language_inventory(encode, lines)
        if not counts:
            raise MtVocabularyMapError(f"vocabulary map for {lang!r}: the sample text is empty; give a few thousand sentences in that language")
        chars = sorted(script_pieces(vocabulary, lang) - always_set)
        seen = [t for t, _ in counts.most_common() if t in known and t not in always_set and t not in chars]
        room = None if max_tokens is None else max(0, max_tokens - len(always) - len(chars))
        by_target[lang] = tuple(chars + seen[:room])
        log.info("vmap %s: %d sample pieces (%d kept), %d script characters, %d always", lang, len(seen), len(seen[:room]), len(chars), len(always))
    return VocabularyMap(tuple(always), by_target)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m madoguchi.mt.vmap MODEL_DIR vi=vi.txt ja=ja.txt [--max-tokens 8000]``: write MODEL_DIR/vmap.txt."""
    from madoguchi.errors import MadoguchiError
    from madoguchi.mt.folder import inspect_model_folder, load_tokenizer

    parser = argparse.ArgumentParser(prog="python -m madoguchi.mt.vmap", description=main.__doc__)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("samples", nargs="+", metavar="LANG=FILE", help="ISO 639-1 code and a text file of sentences in that language, one per line")
    parser.add_argument("--max-tokens", type=int, default=None, help="at most this many allowed tokens per language")
    parser.add_argument("--out", type=Path, default=None, help=f"where to write (default MODEL_DIR/{VMAP_FILE})")
    args = parser.parse_args(argv)
    try:
        layout = inspect_model_folder(args.model_dir.name, args.model_dir)
        tokenizer = load_tokenizer(layout)
        samples = {}
        for item in args.samples:
            lang, eq, name = item.partition("=")
            if not eq:
                parser.error(f"{item!r}: expected LANG=FILE")
            samples[lang] = Path(name).read_text(encoding="utf-8").splitlines()
        vmap = build_vocabulary_map(layout.target_vocabulary, tokenizer.encode_target, samples, max_tokens=args.max_tokens)
        out = vmap.write(args.out or args.model_dir / VMAP_FILE)
    except (MadoguchiError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {out}: " + ", ".join(f"{lang} {len(tokens)}" for lang, tokens in vmap.by_target.items()) + f", always {len(vmap.always)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
