"""Tokenizers: characters, whitespace-separated words, or BPE (through the `tokenizers` library).

All three share the special tokens and their ids, so batching and models never need to know
which one made the ids:

    id  string    role
    0   <pad>     padding (ignored by the loss and masked out of attention)
    1   <bos>     start of the decoder input
    2   <eos>     end of a source or target sequence
    3   <unk>     anything the vocabulary does not hold

    tok = CharTokenizer.from_texts(["hello world"])
    ids = tok.encode("hello", add_eos=True)   # [.., .., .., .., .., 2]
    tok.decode(ids)                           # "hello"
    tok.tokens_to_strings(tok.encode("a b"))  # ["a", "␣", "b"]  (readable axis labels)
    tok.save("tok.json"); load_tokenizer("tok.json") == tok

The vocabulary is built deterministically: the special tokens, then the distinct tokens sorted.
Unknown characters or words become <unk>; `tok.unk_count` counts them and each `encode` /
`encode_batch` call emits at most one `UnknownTokenWarning` saying how many there were.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, BOS, EOS, UNK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
LEVELS = ("char", "word", "bpe")

_FORMAT = "minitransformer.tokenizer"
_FORMAT_VERSION = 1
# How invisible characters are shown in token strings (heatmap axis labels).
_VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍"}


class UnknownTokenWarning(UserWarning):
    """Some input characters or words were not in the vocabulary and became <unk>."""


class Tokenizer:
    """Shared behaviour of all tokenizers: specials, encode/decode, unknown counting, JSON."""

    level: ClassVar[str] = ""
    pad_id: ClassVar[int] = PAD_ID
    bos_id: ClassVar[int] = BOS_ID
    eos_id: ClassVar[int] = EOS_ID
    unk_id: ClassVar[int] = UNK_ID
    special_tokens: ClassVar[tuple[str, ...]] = SPECIAL_TOKENS

    def __init__(self) -> None:
        self.unk_count = 0  # unknown tokens met by encode/encode_batch since creation

    # --- to be provided by subclasses -------------------------------------------------------
    def fit(self, texts: Iterable[str]) -> Tokenizer:
        """Build the vocabulary from `texts` (replacing any earlier one); returns self."""
        raise NotImplementedError

    @property
    def vocab_size(self) -> int:
        """Number of ids, specials included."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description; `tokenizer_from_dict` rebuilds an equal tokenizer."""
        raise NotImplementedError

    def id_to_token(self, token_id: int) -> str:
        """The vocabulary string of one id (specials as "<pad>" etc.)."""
        raise NotImplementedError

    def _encode_plain(self, text: str) -> tuple[list[int], list[str]]:
        """Ids of `text` without specials, and the unknown pieces met."""
        raise NotImplementedError

    def _join(self, tokens: list[str], ids: list[int]) -> str:
        raise NotImplementedError

    # --- shared API --------------------------------------------------------------------------
    @classmethod
    def from_texts(cls, texts: Iterable[str], **options: Any) -> Tokenizer:
        """A new tokenizer of this kind, fitted on `texts`."""
        return cls(**options).fit(texts)

    def __len__(self) -> int:
        return self.vocab_size

    def encode(
        self, text: str, add_bos: bool = False, add_eos: bool = False, *, warn: bool = True
    ) -> list[int]:
        """Ids of one text; `add_bos` / `add_eos` put <bos> first / <eos> last.

        Unknown pieces become <unk>, are counted in `unk_count`, and (with `warn`) give one
        warning for this call.
        """
        ids, unknown = self._encode_checked(text)
        if unknown:
            self.unk_count += len(unknown)
            if warn:
                self._warn_unknown(len(unknown), unknown, n_texts=1)
        return self._with_specials(ids, add_bos, add_eos)

    def encode_batch(
        self, texts: Iterable[str], add_bos: bool = False, add_eos: bool = False
    ) -> list[list[int]]:
        """Ids of many texts; at most one warning for the whole batch."""
        out: list[list[int]] = []
        unknown: list[str] = []
        n_texts = 0
        for text in texts:
            ids, unk = self._encode_checked(text)
            unknown.extend(unk)
            n_texts += 1
            out.append(self._with_specials(ids, add_bos, add_eos))
        if unknown:
            self.unk_count += len(unknown)
            self._warn_unknown(len(unknown), unknown, n_texts=n_texts)
        return out

    def tokenize(self, text: str) -> list[str]:
        """The vocabulary strings `text` is cut into (no specials)."""
        ids, _ = self._encode_checked(text)
        return [self.id_to_token(i) for i in ids]

    def decode(
        self, ids: Iterable[int], skip_special: bool = True, *, stop_at_eos: bool = False
    ) -> str:
        """Text of `ids` (a list or a 1-D tensor).

        `skip_special` drops <pad>, <bos> and <eos>; <unk> always stays visible as "<unk>".
        `stop_at_eos` ignores everything from the first <eos> on (model outputs run past it).
        """
        kept: list[int] = []
        for token_id in self._as_int_list(ids):
            if stop_at_eos and token_id == self.eos_id:
                break
            if skip_special and token_id in (self.pad_id, self.bos_id, self.eos_id):
                continue
            kept.append(token_id)
        return self._join([self.id_to_token(i) for i in kept], kept)

    def tokens_to_strings(self, ids: Iterable[int]) -> list[str]:
        """One readable string per id, specials included (axis labels for attention maps).

        Spaces show as "␣", newlines as "⏎", tabs as "⇥".
        """
        return [_visible(self.id_to_token(i)) for i in self._as_int_list(ids)]

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the tokenizer as JSON (atomically: temp file + rename); returns the path."""
        path = Path(path)
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=1)
        _atomic_write_text(path, text + "\n")
        return path

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tokenizer):
            return NotImplemented
        return type(self) is type(other) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable (fit), so not hashable

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"

    # --- helpers -----------------------------------------------------------------------------
    def _encode_checked(self, text: str) -> tuple[list[int], list[str]]:
        if not isinstance(text, str):
            raise TypeError(
                f"{type(self).__name__}.encode expects a str, got {type(text).__name__}: {text!r}"
            )
        return self._encode_plain(text)

    def _with_specials(self, ids: list[int], add_bos: bool, add_eos: bool) -> list[int]:
        if add_bos:
            ids = [self.bos_id, *ids]
        if add_eos:
            ids = [*ids, self.eos_id]
        return ids

    def _as_int_list(self, ids: Iterable[int]) -> list[int]:
        if hasattr(ids, "tolist"):  # torch tensor or numpy array
            ids = ids.tolist()  # type: ignore[union-attr]
        out = [int(i) for i in ids]
        size = self.vocab_size
        for i in out:
            if not 0 <= i < size:
                raise ValueError(
                    f"token id {i} is out of range for {type(self).__name__} with "
                    f"vocab_size={size} (allowed 0..{size - 1})"
                )
        return out

    def _warn_unknown(self, count: int, unknown: list[str], n_texts: int) -> None:
        examples = ", ".join(repr(u) for u in list(dict.fromkeys(unknown))[:5])
        warnings.warn(
            f"{type(self).__name__}: {count} unknown {self.level} token(s) in {n_texts} text(s) "
            f"mapped to {UNK} (e.g. {examples}); total so far unk_count={self.unk_count}",
            UnknownTokenWarning,
            stacklevel=3,
        )


class _VocabTokenizer(Tokenizer):
    """A tokenizer with an explicit list of token strings (char and word levels)."""

    def __init__(self, tokens: Sequence[str] | None = None) -> None:
        super().__init__()
        self._itos: list[str] = list(SPECIAL_TOKENS)
        self._stoi: dict[str, int] = {s: i for i, s in enumerate(self._itos)}
        self._fitted = False
        if tokens is not None:
            self._set_vocab(list(tokens))

    def _pieces(self, text: str) -> list[str]:
        raise NotImplementedError

    def fit(self, texts: Iterable[str]) -> Tokenizer:
        if isinstance(texts, str):
            raise TypeError(f"{type(self).__name__}.fit expects a list of texts, not one str")
        pieces: set[str] = set()
        for text in texts:
            pieces.update(self._pieces(text))
        self._set_vocab(sorted(pieces - set(SPECIAL_TOKENS)))
        return self

    def _set_vocab(self, tokens: list[str]) -> None:
        clash = [t for t in tokens if t in SPECIAL_TOKENS]
        if clash:
            raise ValueError(f"vocabulary tokens {clash} clash with the special tokens")
        if len(set(tokens)) != len(tokens):
            dupes = sorted({t for t in tokens if tokens.count(t) > 1})
            raise ValueError(f"vocabulary tokens must be distinct; repeated: {dupes[:10]}")
        self._itos = [*SPECIAL_TOKENS, *tokens]
        self._stoi = {s: i for i, s in enumerate(self._itos)}
        self._fitted = True

    @property
    def vocab_size(self) -> int:
        return len(self._itos)

    @property
    def vocab(self) -> list[str]:
        """All token strings in id order (specials first)."""
        return list(self._itos)

    def id_to_token(self, token_id: int) -> str:
        return self._itos[token_id]

    def token_to_id(self, token: str) -> int:
        """Id of one token string (<unk>'s id if absent)."""
        return self._stoi.get(token, UNK_ID)

    def _encode_plain(self, text: str) -> tuple[list[int], list[str]]:
        if not self._fitted:
            raise RuntimeError(
                f"{type(self).__name__} has no vocabulary yet: call fit(texts) or "
                f"{type(self).__name__}.from_texts(texts) first"
            )
        ids: list[int] = []
        unknown: list[str] = []
        for piece in self._pieces(text):
            token_id = self._stoi.get(piece)
            if token_id is None:
                unknown.append(piece)
                token_id = UNK_ID
            ids.append(token_id)
        return ids, unknown

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "type": self.level,
            "tokens": list(self._itos),
        }


class CharTokenizer(_VocabTokenizer):
    """One token per character (spaces and newlines are tokens too)."""

    level = "char"

    def _pieces(self, text: str) -> list[str]:
        return list(text)

    def _join(self, tokens: list[str], ids: list[int]) -> str:
        return "".join(tokens)


class WordTokenizer(_VocabTokenizer):
    """One token per whitespace-separated word; decoding joins words with single spaces."""

    level = "word"

    def _pieces(self, text: str) -> list[str]:
        return text.split()

    def _join(self, tokens: list[str], ids: list[int]) -> str:
        return " ".join(tokens)


class BPETokenizer(Tokenizer):
    """Byte-pair encoding trained offline with the Hugging Face `tokenizers` library.

    Words are split at spaces (marked "▁" inside tokens, shown as "␣"); merges are learned
    from the texts given to `fit` until `vocab_size` ids exist (all characters seen are kept,
    so a tiny `vocab_size` may be exceeded). Characters never seen become <unk>.
    """

    level = "bpe"

    def __init__(self, vocab_size: int = 1000, min_frequency: int = 2) -> None:
        super().__init__()
        limits = (("vocab_size", vocab_size, 5), ("min_frequency", min_frequency, 1))
        for field, value, minimum in limits:
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(
                    f"BPETokenizer.{field} must be an integer >= {minimum}, got {value!r}"
                )
        self.requested_vocab_size = vocab_size
        self.min_frequency = min_frequency
        self._hf: Any = None

    def fit(self, texts: Iterable[str]) -> Tokenizer:
        if isinstance(texts, str):
            raise TypeError("BPETokenizer.fit expects a list of texts, not one str")
        tk = _import_tokenizers()
        hf = tk.Tokenizer(tk.models.BPE(unk_token=UNK))
        hf.pre_tokenizer = tk.pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
        hf.decoder = tk.decoders.Metaspace(replacement="▁", prepend_scheme="always")
        trainer = tk.trainers.BpeTrainer(
            vocab_size=self.requested_vocab_size,
            min_frequency=self.min_frequency,
            special_tokens=list(SPECIAL_TOKENS),
            show_progress=False,
        )
        hf.train_from_iterator(list(texts), trainer=trainer)
        self._set_hf(hf)
        return self

    def _set_hf(self, hf: Any) -> None:
        for expected_id, token in enumerate(SPECIAL_TOKENS):
            if hf.token_to_id(token) != expected_id:
                raise ValueError(
                    f"BPE tokenizer must hold {token!r} at id {expected_id}, "
                    f"found id {hf.token_to_id(token)!r}"
                )
        self._hf = hf

    def _require_fitted(self) -> Any:
        if self._hf is None:
            raise RuntimeError(
                "BPETokenizer has no vocabulary yet: call fit(texts) or "
                "BPETokenizer.from_texts(texts, vocab_size=...) first"
            )
        return self._hf

    @property
    def vocab_size(self) -> int:
        return self._require_fitted().get_vocab_size(with_added_tokens=True)

    def id_to_token(self, token_id: int) -> str:
        return self._require_fitted().id_to_token(token_id)

    def _encode_plain(self, text: str) -> tuple[list[int], list[str]]:
        enc = self._require_fitted().encode(text, add_special_tokens=False)
        ids = list(enc.ids)
        unknown = [
            text[start:end] if end > start else UNK
            for token_id, (start, end) in zip(ids, enc.offsets, strict=True)
            if token_id == UNK_ID
        ]
        return ids, unknown

    def _join(self, tokens: list[str], ids: list[int]) -> str:
        return self._require_fitted().decode(ids, skip_special_tokens=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "type": self.level,
            "vocab_size": self.requested_vocab_size,
            "min_frequency": self.min_frequency,
            "tokenizer": json.loads(self._require_fitted().to_str()),
        }

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> BPETokenizer:
        tok = cls(vocab_size=data["vocab_size"], min_frequency=data.get("min_frequency", 2))
        tk = _import_tokenizers()
        tok._set_hf(tk.Tokenizer.from_str(json.dumps(data["tokenizer"])))
        return tok


_TOKENIZER_CLASSES: dict[str, type[Tokenizer]] = {
    "char": CharTokenizer,
    "word": WordTokenizer,
    "bpe": BPETokenizer,
}


def make_tokenizer(level: str, **options: Any) -> Tokenizer:
    """An unfitted tokenizer of `level` ("char", "word" or "bpe"); options go to its class."""
    if level not in _TOKENIZER_CLASSES:
        raise ValueError(f"tokenizer level {level!r} is not known; choose one of {LEVELS}")
    if level != "bpe" and options:
        raise ValueError(f"options {sorted(options)} only apply to level='bpe', not {level!r}")
    return _TOKENIZER_CLASSES[level](**options)


def tokenizer_from_dict(data: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer from `Tokenizer.to_dict()` output."""
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise ValueError(f"not a minitransformer tokenizer description (format != {_FORMAT!r})")
    if data.get("version") != _FORMAT_VERSION:
        raise ValueError(
            f"tokenizer format version {data.get('version')!r} is not supported "
            f"(this version reads {_FORMAT_VERSION})"
        )
    kind = data.get("type")
    if kind not in _TOKENIZER_CLASSES:
        raise ValueError(f"tokenizer type {kind!r} is not known; choose one of {LEVELS}")
    if kind == "bpe":
        return BPETokenizer._from_dict(data)
    tokens = list(data["tokens"])
    if tuple(tokens[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
        raise ValueError(
            f"tokenizer tokens must start with the specials {list(SPECIAL_TOKENS)}, "
            f"got {tokens[: len(SPECIAL_TOKENS)]}"
        )
    return _TOKENIZER_CLASSES[kind](tokens[len(SPECIAL_TOKENS) :])


def load_tokenizer(path: str | os.PathLike[str]) -> Tokenizer:
    """Read a tokenizer written by `Tokenizer.save`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no tokenizer file at {str(path)!r}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"tokenizer file {str(path)!r} is not valid JSON: {err}") from err
    return tokenizer_from_dict(data)


def _visible(token: str) -> str:
    if token in SPECIAL_TOKENS:
        return token
    return "".join(_VISIBLE.get(ch, ch) for ch in token.replace("▁", " "))


def _import_tokenizers() -> Any:
    try:
        import tokenizers
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "BPETokenizer needs the `tokenizers` package: pip install 'minitransformer[text]' "
            "(or pip install tokenizers)"
        ) from err
    return tokenizers


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
