"""A model hub on 127.0.0.1 for the hub-fetch tests, serving tiny translation models made here.

Generator: tiny but real Hugging Face repositories (a layer or two, d_model 32, a vocabulary of a
few hundred tokens), written by ``transformers`` itself with ``save_pretrained``: Marian
(OPUS-MT) with ``source.spm``/``target.spm`` trained by sentencepiece, M2M100 with ``vocab.json`` +
``sentencepiece.bpe.model``, NLLB-200 (the M2M100 architecture with NLLB's tokenizer) and
MADLAD-400 (T5 with ``spiece.model``). The weights are random: they translate into garbage, but
in the real file layouts. Cached in the test cache, keyed on this file and the versions of the
libraries that write the files.

Server: the parts of the hub's HTTP interface that ``madoguchi.models.hub`` uses:

- ``GET /api/models/{owner}/{name}/revision/{rev}?blobs=true``: ``{"id", "sha", "siblings": [{"rfilename",
  "size", "blobId", "lfs": {"sha256", "size"}}]}``; 404 with ``X-Error-Code: RevisionNotFound`` for
  an unknown revision, 401 ``RepoNotFound`` for an unknown repository (as the hub does);
- ``GET /{owner}/{name}/resolve/{rev}/{file}``: small files directly (``ETag`` = git blob id),
  large ones (LFS: weights and sentencepiece models) by a 302 to ``/lfs/{sha256}``, with
  ``Range: bytes=N-`` answered 206.

Knobs for the failure tests: ``missing`` (404 for a file the listing still names), ``corrupt``
(one byte flipped in what is served), ``answer_commit`` (the API names another commit).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import threading
import warnings
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tests.cache import cache_dir, made_by, stable_hash

GENERATOR_PACKAGES = ("transformers", "torch", "sentencepiece", "tokenizers", "safetensors", "protobuf")
LFS_SUFFIXES = (".safetensors", ".bin", ".model", ".spm")  # what the hub's default .gitattributes (and Helsinki-NLP's) put in LFS

# the tiny models' repositories: repo id -> generator
TINY_MARIAN = "tiny-hub/opus-mt-ja-en"
TINY_M2M100 = "tiny-hub/m2m100"
TINY_NLLB = "tiny-hub/nllb-200"
TINY_MADLAD = "tiny-hub/madlad400"

_CORPUS = [
    "住民票をください。", "在留カードはありますか?", "こちらの書類に名前と住所を書いてください。", "手数料は300円です。",
    "はい、ありがとうございます。", "今日は窓口が混んでいます。", "保険証と印鑑が必要です。", "番号札を取ってお待ちください。",
    "I would like a certificate of residence.", "Do you have your residence card?", "Please write your name and address here.",
    "The fee is 300 yen.", "Yes, thank you very much.", "The counter is busy today.", "You need your insurance card and seal.",
    "Please take a number and wait.",
]
_TINY = {"d_model": 32, "layers": 1, "heads": 2, "ffn": 64, "positions": 128}


def _spm(**ids: int) -> bytes:
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(_CORPUS * 4), model_writer=buf, vocab_size=200, hard_vocab_limit=False, model_type="unigram",
                                   character_coverage=1.0, minloglevel=2, num_threads=1, **ids)
    return buf.getvalue()


def _pieces(model: bytes) -> list[str]:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_proto=model)
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]


def _seq2seq_sizes(config_class, vocab_size: int, **extra):
    t = _TINY
    return config_class(vocab_size=vocab_size, d_model=t["d_model"], encoder_layers=t["layers"], decoder_layers=t["layers"],
                        encoder_attention_heads=t["heads"], decoder_attention_heads=t["heads"], encoder_ffn_dim=t["ffn"],
                        decoder_ffn_dim=t["ffn"], max_position_embeddings=t["positions"], **extra)


def make_marian(out: Path) -> Path:
    """OPUS-MT layout: vocab.json (pad last, as Marian's), source.spm, target.spm, config, safetensors."""
    import torch
    import transformers

    out.mkdir(parents=True)
    model = _spm(unk_id=0, eos_id=1, bos_id=-1, pad_id=-1)
    for name in ("source.spm", "target.spm"):
        (out / name).write_bytes(model)
    vocab = {"</s>": 0, "<unk>": 1}
    for piece in _pieces(model):
        vocab.setdefault(piece, len(vocab))
    vocab["<pad>"] = len(vocab)
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    with warnings.catch_warnings():  # "Recommended: pip install sacremoses": only for its text normalisation, which the files do not need
        warnings.simplefilter("ignore")
        tokenizer = transformers.MarianTokenizer(source_spm=str(out / "source.spm"), target_spm=str(out / "target.spm"), vocab=str(out / "vocab.json"),
                                                 source_lang="ja", target_lang="en")
    pad = vocab["<pad>"]
    config = _seq2seq_sizes(transformers.MarianConfig, len(vocab), pad_token_id=pad, eos_token_id=0, decoder_start_token_id=pad)
    torch.manual_seed(1)
    transformers.MarianMTModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def make_m2m100(out: Path) -> Path:
    """M2M100 layout: vocab.json (4 specials + pieces), sentencepiece.bpe.model; 100 language tokens and 8 madeup words after them."""
    import torch
    import transformers

    out.mkdir(parents=True)
    model = _spm(unk_id=0, bos_id=1, eos_id=2, pad_id=-1)
    (out / "sentencepiece.bpe.model").write_bytes(model)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for piece in _pieces(model):
        vocab.setdefault(piece, len(vocab))
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    tokenizer = transformers.M2M100Tokenizer(vocab_file=str(out / "vocab.json"), spm_file=str(out / "sentencepiece.bpe.model"), src_lang="ja", tgt_lang="en")
    languages = len(tokenizer.lang_token_to_id)
    config = _seq2seq_sizes(transformers.M2M100Config, len(vocab) + languages + tokenizer.num_madeup_words,
                            pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2)
    torch.manual_seed(2)
    transformers.M2M100ForConditionalGeneration(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def make_nllb(out: Path) -> Path:
    """NLLB-200 layout: sentencepiece.bpe.model, tokenizer.json with the 202 language codes; M2M100 weights."""
    import torch
    import transformers
    from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES

    out.mkdir(parents=True)
    (out / "sentencepiece.bpe.model").write_bytes(_spm(unk_id=0, bos_id=1, eos_id=2, pad_id=-1))
    tokenizer = transformers.NllbTokenizer.from_pretrained(str(out))  # converted from the sentencepiece model, as the hub's tokenizer.json was
    tokenizer.add_tokens(list(FAIRSEQ_LANGUAGE_CODES), special_tokens=True)
    config = _seq2seq_sizes(transformers.M2M100Config, len(tokenizer), tokenizer_class="NllbTokenizer",
                            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                            decoder_start_token_id=tokenizer.eos_token_id)
    torch.manual_seed(3)
    transformers.M2M100ForConditionalGeneration(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


MADLAD_TAGS = ("<2ja>", "<2en>", "<2vi>", "<2pt>")


def make_madlad(out: Path) -> Path:
    """MADLAD-400 layout: T5 weights, spiece.model holding the <2xx> target tags (pad 0, eos 1, unk 2)."""
    import torch
    import transformers

    out.mkdir(parents=True)
    (out / "spiece.model").write_bytes(_spm(pad_id=0, eos_id=1, unk_id=2, bos_id=-1, user_defined_symbols=list(MADLAD_TAGS)))
    tokenizer = transformers.T5Tokenizer.from_pretrained(str(out), extra_ids=0)
    t = _TINY
    config = transformers.T5Config(vocab_size=len(tokenizer), d_model=t["d_model"], d_kv=t["d_model"] // t["heads"], d_ff=t["ffn"], num_layers=t["layers"],
                                   num_decoder_layers=t["layers"], num_heads=t["heads"], feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                                   pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    torch.manual_seed(4)
    transformers.T5ForConditionalGeneration(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


GENERATORS = {TINY_MARIAN: make_marian, TINY_M2M100: make_m2m100, TINY_NLLB: make_nllb, TINY_MADLAD: make_madlad}


def tiny_repos() -> dict[str, Path]:
    """Every tiny repository, made once and cached (keyed on this file and the generating libraries' versions)."""
    key = stable_hash(made_by([__file__], GENERATOR_PACKAGES))[:16]
    root = cache_dir("hf-tiny-repos") / key
    if not root.is_dir():
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root.parent))
        try:
            for repo, make in GENERATORS.items():
                make(tmp / repo.replace("/", "--"))
            os.replace(tmp, root)
        except OSError:
            if not root.is_dir():  # else a concurrent run put the same entry in place first
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return {repo: root / repo.replace("/", "--") for repo in GENERATORS}


# ---------------------------------------------------------------------------------------------
# the server


@dataclass(frozen=True)
class ServedFile:
    name: str
    data: bytes
    lfs: bool

    @property
    def blob_id(self) -> str:  # git's object id of the file as stored: the LFS pointer for an LFS file
        stored = self.pointer if self.lfs else self.data
        return hashlib.sha1(b"blob %d\0" % len(stored) + stored).hexdigest()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def pointer(self) -> bytes:
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(self.data)}\n".encode()


@dataclass
class MirrorRepo:
    repo: str
    files: dict[str, ServedFile]

    @property
    def commit(self) -> str:  # stands in for the commit sha: changes with any file
        return hashlib.sha1(json.dumps(sorted((n, f.blob_id) for n, f in self.files.items())).encode()).hexdigest()

    @classmethod
    def from_folder(cls, repo: str, folder: Path) -> MirrorRepo:
        files = {p.name: ServedFile(p.name, p.read_bytes(), p.suffix in LFS_SUFFIXES) for p in sorted(folder.iterdir()) if p.is_file()}
        files[".gitattributes"] = ServedFile(".gitattributes", b"".join(b"*%s filter=lfs diff=lfs merge=lfs -text\n" % s.encode() for s in LFS_SUFFIXES), False)
        files["README.md"] = ServedFile("README.md", f"# {repo}\n\nA tiny random model for tests.\n".encode(), False)
        return cls(repo, files)


@dataclass
class HubMirror:
    """The hub on 127.0.0.1:<free port>; ``endpoint`` is what HF_ENDPOINT gets."""

    repos: dict[str, MirrorRepo]
    missing: set[tuple[str, str]] = field(default_factory=set)
    corrupt: set[tuple[str, str]] = field(default_factory=set)
    answer_commit: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, Range header)
    _server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, repo: str, folder: Path) -> MirrorRepo:
        self.repos[repo] = MirrorRepo.from_folder(repo, folder)
        return self.repos[repo]

    def start(self) -> HubMirror:
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet: the tests read mirror.requests
                pass

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                mirror.requests.append((self.command, self.path, self.headers.get("Range", "")))
                path = unquote(urlsplit(self.path).path)
                if path.startswith("/api/models/"):
                    return self._api(path[len("/api/models/"):], body)
                if path.startswith("/lfs/"):
                    repo, _, sha = path[len("/lfs/"):].rpartition("/")
                    served = next((f for f in mirror.repos.get(repo, MirrorRepo(repo, {})).files.values() if f.sha256 == sha), None)
                    return self._send_file(repo, served, body) if served else self._error(404, "EntryNotFound")
                parts = path.lstrip("/").split("/", 4)
                if len(parts) == 5 and parts[2] == "resolve":
                    return self._resolve("/".join(parts[:2]), parts[3], parts[4], body)
                return self._error(404, "")

            def _repo(self, repo: str, rev: str) -> MirrorRepo | None:
                found = mirror.repos.get(repo)
                if found is None:
                    self._error(401, "RepoNotFound")
                elif rev not in (found.commit, "main"):
                    self._error(404, "RevisionNotFound")
                    return None
                return found

            def _api(self, rest: str, body: bool) -> None:
                repo, sep, rev = rest.partition("/revision/")
                found = self._repo(repo, rev) if sep else None
                if not sep:
                    return self._error(404, "")
                if found is None:
                    return None
                siblings = [{"rfilename": f.name, "size": len(f.data), "blobId": f.blob_id,
                             **({"lfs": {"sha256": f.sha256, "size": len(f.data), "pointerSize": len(f.pointer)}} if f.lfs else {})}
                            for f in found.files.values()]
                data = json.dumps({"id": repo, "modelId": repo, "sha": mirror.answer_commit.get(repo, found.commit), "siblings": siblings}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)
                return None

            def _resolve(self, repo: str, rev: str, name: str, body: bool) -> None:
                found = self._repo(repo, rev)
                if found is None:
                    return None
                served = found.files.get(name)
                if served is None or (repo, name) in mirror.missing:
                    return self._error(404, "EntryNotFound")
                if served.lfs:  # the hub sends LFS files from its storage
                    self.send_response(302)
                    self.send_header("Location", f"/lfs/{repo}/{served.sha256}")
                    self.send_header("X-Repo-Commit", found.commit)
                    self.send_header("X-Linked-Etag", f'"{served.sha256}"')
                    self.send_header("X-Linked-Size", str(len(served.data)))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                return self._send_file(repo, served, body, commit=found.commit)

            def _send_file(self, repo: str, served: ServedFile, body: bool, commit: str = "") -> None:
                data = served.data
                if (repo, served.name) in mirror.corrupt:
                    data = data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 0xFF]) + data[len(data) // 2 + 1:]
                start = 0
                asked = self.headers.get("Range", "")
                if asked.startswith("bytes=") and asked.endswith("-"):
                    start = min(int(asked[len("bytes="):-1]), len(data))
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("ETag", f'"{served.sha256 if served.lfs else served.blob_id}"')
                if commit:
                    self.send_header("X-Repo-Commit", commit)
                self.end_headers()
                if body:
                    self.wfile.write(data[start:])

            def _error(self, status: int, code: str) -> None:
                data = json.dumps({"error": code or "not found"}).encode()
                self.send_response(status)
                if code:
                    self.send_header("X-Error-Code", code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="hub-mirror", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def paths(self, prefix: str = "") -> list[str]:
        return [p for _, p, _ in self.requests if p.startswith(prefix)]
