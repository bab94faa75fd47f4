"""Small, real CTranslate2 translation models for the MT tests, built on the fly (no downloads).

The weights are set by hand so that the model's behaviour is known exactly: a **lexical copy
transformer**. Decoder step ``t`` attends (cross-attention, through one-hot position encodings)
to source position ``t + offset``, the attention value carries that source token's one-hot
embedding, and the output projection turns it into the token's *counterpart* in the target
vocabulary. For multilingual models the target-language token (a forced target prefix, like
M2M100's ``__vi__``) is picked up by decoder self-attention and adds a bonus to every token of
that language, so the language token decides which counterpart wins: the language token
really steers the output, and leaving it out gives a different, wrong translation.

Residual stream layout (one attention head of width ``d_model``)::

    [ TOK: one dim per source token | POS: one per position | LANG: one per language | BIAS ]

Every sublayer not mentioned is zero, every layer norm is the identity affine map (gamma 1,
beta 0). A layer norm of a vector with a few large one-hot entries is ``a*x + c`` with a small
``c``, so the one-hot structure survives it, and survives int8 quantization (one-hot rows
quantize exactly).

Toy languages: each word of ``LEXICON`` is one sentencepiece piece (a user-defined symbol),
words are separated by spaces (the piece ``▁``), so that one source piece maps to one target
piece and "translation" is a word-for-word lookup that tests can predict.
"""

from __future__ import annotations

import io
import random
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from madoguchi.mt.router import MachineTranslation

# concept -> word per toy language; every word is a single piece in its language's tokenizer
LEXICON: dict[str, dict[str, str]] = {
    "certificate": {"ja": "住民票", "en": "certificate", "vi": "giấy", "pt": "certidão"},
    "insurance": {"ja": "保険証", "en": "insurance", "vi": "thẻ", "pt": "seguro"},
    "name": {"ja": "名前", "en": "name", "vi": "tên", "pt": "nome"},
    "address": {"ja": "住所", "en": "address", "vi": "nhà", "pt": "endereço"},
    "please": {"ja": "ください", "en": "please", "vi": "xin", "pt": "favor"},
    "yes": {"ja": "はい", "en": "yes", "vi": "vâng", "pt": "sim"},
    "no": {"ja": "いいえ", "en": "no", "vi": "không", "pt": "não"},
    "thanks": {"ja": "ありがとう", "en": "thanks", "vi": "cảm", "pt": "obrigado"},
    "today": {"ja": "今日", "en": "today", "vi": "nay", "pt": "hoje"},
    "counter": {"ja": "窓口", "en": "counter", "vi": "quầy", "pt": "balcão"},
    "document": {"ja": "書類", "en": "document", "vi": "đơn", "pt": "documento"},
    "photo": {"ja": "写真", "en": "photo", "vi": "ảnh", "pt": "foto"},
    "seal": {"ja": "印鑑", "en": "seal", "vi": "dấu", "pt": "carimbo"},
    "number": {"ja": "番号", "en": "number", "vi": "số", "pt": "número"},
    "office": {"ja": "市役所", "en": "office", "vi": "sở", "pt": "prefeitura"},
    "need": {"ja": "必要", "en": "need", "vi": "cần", "pt": "precisa"},
    "full_stop": {"ja": "。", "en": ".", "vi": ".", "pt": "."},
    "question": {"ja": "？", "en": "?", "vi": "?", "pt": "?"},
}
TOY_LANGUAGES = ("ja", "en", "vi", "pt")
WORD_CONCEPTS = [c for c in LEXICON if c not in ("full_stop", "question")]


def toy_sentence(lang: str, concepts: Sequence[str], end: str = "full_stop") -> str:
    """Words joined by spaces, the sentence mark attached: '住民票 ください。', 'certificate please.'"""
    return " ".join(LEXICON[c][lang] for c in concepts) + LEXICON[end][lang]


def toy_corpus(lang: str, n: int = 300, seed: int = 7) -> list[str]:
    """n random sentences in lang; the same n and seed give the same sentences (translated) in every language."""
    rng = random.Random(seed)  # same seed, same concepts: the corpora of all languages are parallel
    return [toy_sentence(lang, rng.sample(WORD_CONCEPTS, rng.randint(1, 6)), rng.choice(["full_stop", "question"])) for _ in range(n)]


def language_words(lang: str) -> list[str]:
    return list(dict.fromkeys(LEXICON[c][lang] for c in LEXICON))


def train_sentencepiece(corpus: Sequence[str], symbols: Sequence[str], extra_symbols: Sequence[str] = ()) -> bytes:
    """A unigram sentencepiece model where every symbol is one piece; ids 0..2 = <pad> <unk> </s>."""
    import sentencepiece as spm

    buf = io.BytesIO()
    chars = {ch for line in corpus for ch in line if not ch.isspace()}
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_writer=buf, vocab_size=len(chars) + len(symbols) + len(extra_symbols) + 8, hard_vocab_limit=False,
        user_defined_symbols=list(dict.fromkeys([*symbols, *extra_symbols])), model_type="unigram",
        character_coverage=1.0, pad_id=0, unk_id=1, eos_id=2, bos_id=-1, minloglevel=2, num_threads=1)
    return buf.getvalue()


def spm_pieces(model_proto: bytes) -> list[str]:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_proto=model_proto)
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]


@dataclass(frozen=True)
class CopyModelPlan:
    """What to build: vocabularies, the counterpart(s) of each source token and the language tags."""

    source_vocab: list[str]
    target_vocab: list[str]
    counterparts: Mapping[str, Sequence[str]]  # source token -> target tokens it may become
    token_languages: Mapping[str, Sequence[str]]  # target token -> languages it belongs to (multilingual)
    decoder_language_tokens: Mapping[str, str]  # target-language token forced as target prefix -> language (M2M100, NLLB)
    encoder_language_tokens: Mapping[str, str]  # target-language token at the source start -> language (MADLAD, Marian >>xxx<<)
    config: Mapping[str, object]  # CTranslate2 config.json (tokens, decoder_start_token …)
    decoder_offset: int = 0  # decoder step t attends to source position t + offset
    max_positions: int = 256


def save_copy_model(plan: CopyModelPlan, out_dir: Path, quantization: str = "int8") -> Path:
    """Write model.bin, config.json and the vocabulary file(s) of the copy transformer to out_dir."""
    from ctranslate2.specs import transformer_spec

    src, tgt = plan.source_vocab, plan.target_vocab
    languages = sorted({lang for langs in plan.token_languages.values() for lang in langs}
                       | set(plan.decoder_language_tokens.values()) | set(plan.encoder_language_tokens.values()))
    n_tok, n_pos, n_lang = len(src), plan.max_positions, len(languages)
    pos0, lang0 = n_tok, n_tok + n_pos
    bias = lang0 + n_lang
    d_model = max(bias + 1, 2 * max(n_tok, n_pos, n_lang + 1))
    d_model += -d_model % 16
    head = d_model // 2  # head 0: dims [0, head), head 1: [head, d_model)
    lang_dim = {lang: lang0 + i for i, lang in enumerate(languages)}
    lang_dims = np.array(sorted(lang_dim.values()), dtype=np.int64)
    src_index = {t: i for i, t in enumerate(src)}
    tgt_index = {t: i for i, t in enumerate(tgt)}
    toks, positions = np.arange(n_tok), np.arange(n_pos)

    def zeros(*shape: int) -> np.ndarray:
        return np.zeros(shape, np.float32)

    spec = transformer_spec.TransformerSpec.from_config((1, 1), 2, pre_norm=True)
    enc, dec = spec.encoder, spec.decoder

    # encoder output = layer_norm(token one-hot + position one-hot); a source-side language tag lights its LANG dim instead
    enc.scale_embeddings = False
    emb = zeros(n_tok, d_model)
    emb[toks, toks] = 1
    for token, lang in plan.encoder_language_tokens.items():
        emb[src_index[token]] = 0
        emb[src_index[token], lang_dim[lang]] = 1
    enc.embeddings[0].weight = emb
    enc_pos = zeros(n_pos, d_model)
    enc_pos[positions, pos0 + positions] = 1
    enc.position_encodings.encodings = enc_pos
    _identity_norm(enc.layer_norm, d_model)
    _zero_layer(enc.layer[0], d_model, with_cross_attention=False)

    # decoder input: a target-prefix language token lights its LANG dim, every other token the BIAS dim
    dec.scale_embeddings = False
    demb = zeros(len(tgt), d_model)
    demb[:, bias] = 1
    for token, lang in plan.decoder_language_tokens.items():
        demb[tgt_index[token], bias] = 0
        demb[tgt_index[token], lang_dim[lang]] = 1
    dec.embeddings.weight = demb
    dec_pos = zeros(n_pos, d_model)
    steps = np.arange(n_pos - plan.decoder_offset)
    dec_pos[steps, pos0 + steps + plan.decoder_offset] = 1
    dec.position_encodings.encodings = dec_pos
    _identity_norm(dec.layer_norm, d_model)
    layer = dec.layer[0]
    _zero_layer(layer, d_model, with_cross_attention=True)
    constant_input = np.concatenate([[bias], lang_dims])

    # self-attention, head 1: every step finds the target-prefix language token and copies its LANG dim
    qkv = zeros(3 * d_model, d_model)
    out = zeros(d_model, d_model)
    if len(lang_dims):
        qkv[head, constant_input] = 4.0  # query: the same at every step
        qkv[d_model + head, lang_dims] = 1.0  # key: "this position holds a language token"
        qkv[2 * d_model + head + np.arange(n_lang), lang_dims] = 1.0  # value: which language
        out[lang_dims, head + np.arange(n_lang)] = 1.0
    layer.self_attention.linear[0].weight = qkv
    layer.self_attention.linear[1].weight = out

    # cross-attention, head 0: query = own position, key = source position, value = source token;
    # head 1: find a source-side language tag and copy its LANG dim
    query = zeros(d_model, d_model)
    query[positions, pos0 + positions] = 4.0
    kv = zeros(2 * d_model, d_model)
    kv[positions, pos0 + positions] = 1.0
    kv[d_model + toks, toks] = 1.0
    cross_out = zeros(d_model, d_model)
    cross_out[toks, toks] = 1.0
    if len(lang_dims):
        query[head, constant_input] = 4.0
        kv[head, lang_dims] = 1.0
        kv[d_model + head + np.arange(n_lang), lang_dims] = 1.0
        cross_out[lang_dims, head + np.arange(n_lang)] = 1.0
    layer.attention.linear[0].weight = query
    layer.attention.linear[1].weight = kv
    layer.attention.linear[2].weight = cross_out

    # output: the copied token's counterparts score 1, the target language's tokens 0.5 more
    proj = zeros(len(tgt), d_model)
    for token, targets in plan.counterparts.items():
        for target in targets:
            proj[tgt_index[target], src_index[token]] = 1.0
    for token, langs in plan.token_languages.items():
        for lang in langs:
            proj[tgt_index[token], lang_dim[lang]] = 0.5
    dec.projection.weight = proj

    spec.register_source_vocabulary(src)
    spec.register_target_vocabulary(tgt)
    for key, value in plan.config.items():
        if hasattr(spec.config, key):
            setattr(spec.config, key, value)
        else:
            spec.config.add_attribute(key, value)
    spec.validate()
    spec.optimize(quantization=quantization)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec.save(str(out_dir))
    return out_dir


def _identity_norm(norm, d_model: int) -> None:
    norm.gamma = np.ones(d_model, np.float32)
    norm.beta = np.zeros(d_model, np.float32)


def _zero_layer(layer, d_model: int, with_cross_attention: bool) -> None:
    """Zero every weight of a layer (it adds nothing to the residual stream); identity layer norms."""
    _identity_norm(layer.self_attention.layer_norm, d_model)
    layer.self_attention.linear[0].weight = np.zeros((3 * d_model, d_model), np.float32)
    layer.self_attention.linear[1].weight = np.zeros((d_model, d_model), np.float32)
    if with_cross_attention:
        _identity_norm(layer.attention.layer_norm, d_model)
        layer.attention.linear[0].weight = np.zeros((d_model, d_model), np.float32)
        layer.attention.linear[1].weight = np.zeros((2 * d_model, d_model), np.float32)
        layer.attention.linear[2].weight = np.zeros((d_model, d_model), np.float32)
    _identity_norm(layer.ffn.layer_norm, d_model)
    layer.ffn.linear_0.weight = np.zeros((16, d_model), np.float32)
    layer.ffn.linear_1.weight = np.zeros((d_model, 16), np.float32)


# ---------------------------------------------------------------------------------------------
# model folders shaped like each family's CTranslate2 conversion

# the tags each family's real vocabulary uses for the toy languages (written out here, not taken
# from madoguchi.mt.families, so the tests check the engine's table against an independent one)
M2M100_TAGS = {"ja": "__ja__", "en": "__en__", "vi": "__vi__", "pt": "__pt__"}
NLLB_TAGS = {"ja": "jpn_Jpan", "en": "eng_Latn", "vi": "vie_Latn", "pt": "por_Latn"}
MADLAD_TAGS = {"ja": "<2ja>", "en": "<2en>", "vi": "<2vi>", "pt": "<2pt>"}
MARIAN_TAGS = {"ja": ">>jpn<<", "en": ">>eng<<", "vi": ">>vie<<", "pt": ">>por<<"}
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")


def _word_concepts(langs: Sequence[str]) -> dict[str, str]:
    """word -> concept, over the given languages (a word shared by languages, like '.', maps once)."""
    return {LEXICON[c][lang]: c for c in LEXICON for lang in langs}


def _counterparts(source_vocab: Sequence[str], target_vocab: Sequence[str], targets: Sequence[str], langs: Sequence[str]) -> dict[str, list[str]]:
    """Each source token -> its concept's words in the target languages, else itself, else <unk>."""
    concepts, known = _word_concepts(langs), set(target_vocab)
    out = {}
    for token in source_vocab:
        if token in concepts:
            out[token] = sorted({LEXICON[concepts[token]][lang] for lang in targets})
        else:
            out[token] = [token if token in known else "<unk>"]
    return out


def _token_languages(target_vocab: Sequence[str], langs: Sequence[str]) -> dict[str, list[str]]:
    return {token: [lang for lang in langs if token in language_words(lang)] for token in target_vocab if any(token in language_words(lang) for lang in langs)}


def _pieces_without_specials(model_proto: bytes) -> list[str]:
    return [p for p in spm_pieces(model_proto) if p not in SPECIALS]


def build_marian(out: Path, source: str, target: str | Sequence[str], *, shared_vocabulary: bool = True, max_positions: int = 256) -> Path:
    """An OPUS-MT-style folder: source.spm, target.spm, vocabulary, model. Several targets = a multi-target model (>>xxx<< tags)."""
    targets = [target] if isinstance(target, str) else list(target)
    source_spm = train_sentencepiece(toy_corpus(source), language_words(source))
    target_spm = train_sentencepiece([s for t in targets for s in toy_corpus(t)], [w for t in targets for w in language_words(t)])
    tags = [MARIAN_TAGS[t] for t in targets] if len(targets) > 1 else []
    source_vocab = ["</s>", "<unk>", *_pieces_without_specials(source_spm), *tags]
    target_vocab = ["</s>", "<unk>", *_pieces_without_specials(target_spm), *tags]
    if shared_vocabulary:
        source_vocab = target_vocab = list(dict.fromkeys(source_vocab + target_vocab))
    plan = CopyModelPlan(
        source_vocab, target_vocab, _counterparts(source_vocab, target_vocab, targets, [source, *targets]),
        _token_languages(target_vocab, targets) if tags else {}, {}, {MARIAN_TAGS[t]: t for t in targets} if tags else {},
        {"unk_token": "<unk>", "eos_token": "</s>", "bos_token": "<s>", "decoder_start_token": "</s>"},
        decoder_offset=1 if tags else 0, max_positions=max_positions)
    save_copy_model(plan, out)
    (out / "source.spm").write_bytes(source_spm)
    (out / "target.spm").write_bytes(target_spm)
    return out


def _build_shared_multilingual(out: Path, langs: Sequence[str], tags: Mapping[str, str], tokenizer_file: str, *, tags_in_tokenizer: bool,
                               decoder_tags: bool, specials: Sequence[str], extra_tokens: Sequence[str], config: Mapping[str, object],
                               max_positions: int) -> Path:
    corpus = [s for lang in langs for s in toy_corpus(lang)]
    spm_model = train_sentencepiece(corpus, [w for lang in langs for w in language_words(lang)], list(tags.values()) if tags_in_tokenizer else ())
    pieces = _pieces_without_specials(spm_model)
    vocab = list(dict.fromkeys([*specials, *pieces, *tags.values(), *extra_tokens]))
    by_tag = {tag: lang for lang, tag in tags.items()}
    plan = CopyModelPlan(
        vocab, vocab, _counterparts(vocab, vocab, langs, langs), _token_languages(vocab, langs),
        by_tag if decoder_tags else {}, {} if decoder_tags else by_tag, config,
        decoder_offset=0 if decoder_tags else 1, max_positions=max_positions)
    save_copy_model(plan, out)
    (out / tokenizer_file).write_bytes(spm_model)
    return out


def build_m2m100(out: Path, langs: Sequence[str] = TOY_LANGUAGES, *, max_positions: int = 256) -> Path:
    """An M2M100-style folder: sentencepiece.bpe.model, shared vocabulary with __xx__ tags and madeup words."""
    return _build_shared_multilingual(
        out, langs, {lang: M2M100_TAGS[lang] for lang in langs}, "sentencepiece.bpe.model", tags_in_tokenizer=False, decoder_tags=True,
        specials=SPECIALS, extra_tokens=[f"madeupword{i}" for i in range(4)],
        config={"unk_token": "<unk>", "eos_token": "</s>", "bos_token": "<s>", "decoder_start_token": "</s>"}, max_positions=max_positions)


def build_nllb(out: Path, langs: Sequence[str] = TOY_LANGUAGES, *, max_positions: int = 256) -> Path:
    """An NLLB-200-style folder: sentencepiece.bpe.model, shared vocabulary with xxx_Xxxx tags and <mask>."""
    return _build_shared_multilingual(
        out, langs, {lang: NLLB_TAGS[lang] for lang in langs}, "sentencepiece.bpe.model", tags_in_tokenizer=False, decoder_tags=True,
        specials=SPECIALS, extra_tokens=["<mask>"],
        config={"unk_token": "<unk>", "eos_token": "</s>", "bos_token": "<s>", "decoder_start_token": "</s>"}, max_positions=max_positions)


def build_madlad(out: Path, langs: Sequence[str] = TOY_LANGUAGES, *, max_positions: int = 256) -> Path:
    """A MADLAD-400-style (T5) folder: spiece.model holding the <2xx> tags, vocabulary = the tokenizer's pieces in id order."""
    return _build_shared_multilingual(
        out, langs, {lang: MADLAD_TAGS[lang] for lang in langs}, "spiece.model", tags_in_tokenizer=True, decoder_tags=False,
        specials=("<pad>", "</s>", "<unk>"), extra_tokens=[],
        config={"unk_token": "<unk>", "eos_token": "</s>", "bos_token": "<pad>", "decoder_start_token": "<pad>"}, max_positions=max_positions)


# ---------------------------------------------------------------------------------------------
# helpers of the MT tests


CONCEPTS = ["certificate", "please"]  # 住民票 ください。 / certificate please. / giấy xin. / certidão favor.


def toy_models(root: Path) -> dict[str, Path]:
    """One small model of every family and pair shape the tests need, built under ``root``."""
    return {
        "opus-mt-ja-en": build_marian(root / "opus-mt-ja-en", "ja", "en"),
        "opus-mt-en-ja": build_marian(root / "opus-mt-en-ja", "en", "ja"),
        "opus-mt-en-vi": build_marian(root / "opus-mt-en-vi", "en", "vi", shared_vocabulary=False),
        "opus-mt-en-mul": build_marian(root / "opus-mt-en-mul", "en", ["ja", "vi", "pt"]),
        "m2m100-toy": build_m2m100(root / "m2m100-toy"),
        "nllb-toy": build_nllb(root / "nllb-toy"),
        "madlad-toy": build_madlad(root / "madlad-toy"),
    }


def load(toy: dict[str, Path], *ids: str, **options) -> MachineTranslation:
    from madoguchi.mt.router import MachineTranslation

    return MachineTranslation.from_folders({i: toy[i] for i in ids}, threads=1, **options)


def copy_model(toy: dict[str, Path], model_id: str, root: Path) -> Path:
    return Path(shutil.copytree(toy[model_id], root / model_id))


class Recorder:
    """Stands in for the ctranslate2.Translator of an engine and records every call."""

    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, []

    def translate_batch(self, source, target_prefix=None, **options):
        self.calls.append((source, target_prefix, options))
        return self.inner.translate_batch(source, target_prefix, **options)

    def unload_model(self) -> None:
        self.inner.unload_model()


def record(mt, model_id: str) -> Recorder:
    engine = next(e for e in mt._engines if e.model_id == model_id)
    engine._translator = Recorder(engine._translator)
    return engine._translator
