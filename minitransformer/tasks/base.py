"""Task and Example: a data set of strings, its tokenizers, and cheap batching on top.

Gold alignment convention
-------------------------
`Example.alignment` is a tuple of `(target_index, source_index)` pairs counted in the token
positions of the TOKENIZED sequences WITHOUT special tokens (`task.tgt_tokenizer.encode(ex.tgt)`
and `task.src_tokenizer.encode(ex.src)`). The model reads `src_ids + [EOS]`, so source index j
is encoder position j; the decoder reads `[BOS] + tgt_ids` and its query row i predicts target
token i. Hence `cross_attention[..., i, j]` is the attention to compare with a gold pair (i, j).
Target tokens with no source counterpart (German "und", the "-" of a date) are simply absent;
a target token may align to several source tokens (French "onze" in 71 = "soixante et onze"
aligns to both "seventy" and "one"). `Task.gold_alignment_matrix(ex)` turns it into a 0/1
tensor of shape (T_tgt, S_src), or (T_tgt + 1, S_src + 1) with `include_specials=True` to match
the model's cross-attention maps one to one (the extra <eos> row and column are zero).
Language-model tasks and user data have `alignment=None`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ..batching import Batch, check_batch_size, collate, make_batches
from ..tokenizer import SPECIAL_TOKENS, Tokenizer, make_tokenizer

KINDS = ("seq2seq", "lm")
SPLITS = ("train", "valid", "test")
Alignment = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Example:
    """One data point. `src` is "" for language-model tasks; `alignment` may be None."""

    src: str
    tgt: str
    alignment: Alignment | None = None


class ProbeBatch(NamedTuple):
    """A fixed small batch plus the token strings that label its attention maps.

    Token lists are per example and unpadded (padding columns come after them):
    `src_tokens[b]` labels encoder positions (source tokens then "<eos>"; None for LM tasks),
    `tgt_in_tokens[b]` labels decoder positions ("<bos>" then target tokens),
    `tgt_out_tokens[b]` the token each decoder position must predict (target tokens, "<eos>").
    """

    batch: Batch
    src_tokens: list[list[str]] | None
    tgt_in_tokens: list[list[str]]
    tgt_out_tokens: list[list[str]]
    examples: list[Example]


@dataclass(eq=False)
class Task:
    """A named data set with train/valid/test splits of Examples and its tokenizers.

    Each split is tokenised once, on first use, and cached (`encoded(split)`).
    """

    name: str
    kind: str
    description: str
    train: list[Example]
    valid: list[Example]
    test: list[Example]
    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer
    options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    is_translation: bool = False  # scored with BLEU as well as exact match
    _encoded: dict[str, list[tuple[list[int], list[int]]]] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Task.kind {self.kind!r} is not known; choose one of {KINDS}")
        if not self.train:
            raise ValueError(f"task {self.name!r} has an empty train split")

    # --- building ----------------------------------------------------------------------------
    @classmethod
    def from_examples(
        cls,
        name: str,
        kind: str,
        description: str,
        splits: tuple[list[Example], list[Example], list[Example]],
        *,
        level: str = "char",
        tgt_level: str | None = None,
        shared_vocab: bool = True,
        tokenizer_options: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        seed: int = 0,
        is_translation: bool = False,
    ) -> Task:
        """Build a Task, fitting its tokenizers on the texts of all three splits.

        The vocabulary is a property of the data set, fitted on every split so that no
        evaluation token becomes <unk> (the model still never trains on valid/test examples).
        `shared_vocab` uses one tokenizer object for source and target.
        """
        train, valid, test = splits
        every = [*train, *valid, *test]
        tok_opts = tokenizer_options or {}
        tgt_texts = [ex.tgt for ex in every]
        src_texts = [ex.src for ex in every] if kind == "seq2seq" else []
        if kind == "lm" or (shared_vocab and (tgt_level or level) == level):
            tgt_tok = make_tokenizer(level, **tok_opts).fit(src_texts + tgt_texts)
            src_tok = tgt_tok
        else:
            src_tok = make_tokenizer(level, **tok_opts).fit(src_texts)
            tgt_tok = make_tokenizer(tgt_level or level, **tok_opts).fit(tgt_texts)
        return cls(
            name=name,
            kind=kind,
            description=description,
            train=list(train),
            valid=list(valid),
            test=list(test),
            src_tokenizer=src_tok,
            tgt_tokenizer=tgt_tok,
            options=dict(options or {}),
            seed=seed,
            is_translation=is_translation,
        )

    # --- facts -------------------------------------------------------------------------------
    @property
    def has_alignment(self) -> bool:
        """True when the examples carry gold alignments."""
        return any(ex.alignment is not None for ex in self.train)

    @property
    def shared_vocab(self) -> bool:
        """True when source and target use the same tokenizer object."""
        return self.src_tokenizer is self.tgt_tokenizer

    @property
    def src_vocab_size(self) -> int:
        return self.src_tokenizer.vocab_size

    @property
    def tgt_vocab_size(self) -> int:
        return self.tgt_tokenizer.vocab_size

    @property
    def max_src_len(self) -> int:
        """Longest encoder input over all splits, <eos> included (0 for LM tasks)."""
        if self.kind == "lm":
            return 0
        return max(len(s) + 1 for split in SPLITS for s, _ in self.encoded(split))

    @property
    def max_tgt_len(self) -> int:
        """Longest decoder input (= labels) over all splits, <bos> (or <eos>) included."""
        return max(len(t) + 1 for split in SPLITS for _, t in self.encoded(split))

    @property
    def max_len(self) -> int:
        """max(max_src_len, max_tgt_len): the smallest `ModelConfig.max_len` that fits."""
        return max(self.max_src_len, self.max_tgt_len)

    def split(self, name: str) -> list[Example]:
        """The examples of split `name` ("train", "valid" or "test")."""
        if name not in SPLITS:
            raise ValueError(f"split {name!r} is not known; choose one of {SPLITS}")
        return getattr(self, name)

    def __repr__(self) -> str:
        vocab = (
            f"vocab={self.tgt_vocab_size}"
            if self.shared_vocab
            else f"src_vocab={self.src_vocab_size}, tgt_vocab={self.tgt_vocab_size}"
        )
        return (
            f"Task({self.name!r}, kind={self.kind!r}, train={len(self.train)}, "
            f"valid={len(self.valid)}, test={len(self.test)}, {vocab}, "
            f"alignment={self.has_alignment})"
        )

    # --- tokens ------------------------------------------------------------------------------
    def encode_example(self, ex: Example) -> tuple[list[int], list[int]]:
        """(src_ids, tgt_ids) without specials; src_ids is [] for LM tasks."""
        src_ids = [] if self.kind == "lm" else self.src_tokenizer.encode(ex.src)
        return src_ids, self.tgt_tokenizer.encode(ex.tgt)

    def encoded(self, split: str) -> list[tuple[list[int], list[int]]]:
        """(src_ids, tgt_ids) of every example of `split`, tokenised once and cached."""
        if split not in self._encoded:
            examples = self.split(split)
            tgt = self.tgt_tokenizer.encode_batch([ex.tgt for ex in examples])
            if self.kind == "lm":
                src: list[list[int]] = [[] for _ in examples]
            else:
                src = self.src_tokenizer.encode_batch([ex.src for ex in examples])
            self._encoded[split] = list(zip(src, tgt, strict=True))
        return self._encoded[split]

    def gold_alignment_matrix(self, ex: Example, *, include_specials: bool = False) -> Tensor:
        """0/1 float tensor (T_tgt, S_src) with 1 at every gold (target, source) pair.

        With `include_specials` the shape is (T_tgt + 1, S_src + 1), matching the model's
        cross-attention (decoder rows [BOS]+tgt, encoder columns src+[EOS]); the last row and
        column stay 0.
        """
        if ex.alignment is None:
            raise ValueError(
                f"task {self.name!r}: this example has no gold alignment "
                f"(src={ex.src!r}, tgt={ex.tgt!r})"
            )
        src_ids, tgt_ids = self.encode_example(ex)
        extra = 1 if include_specials else 0
        matrix = torch.zeros(len(tgt_ids) + extra, len(src_ids) + extra)  # (T, S)
        for i, j in ex.alignment:
            if not (0 <= i < len(tgt_ids) and 0 <= j < len(src_ids)):
                raise ValueError(
                    f"task {self.name!r}: alignment pair {(i, j)} is outside the token "
                    f"lengths (tgt {len(tgt_ids)}, src {len(src_ids)}) of {ex}"
                )
            matrix[i, j] = 1.0
        return matrix

    # --- batches -----------------------------------------------------------------------------
    def batches(
        self,
        split: str,
        batch_size: int,
        *,
        generator: torch.Generator | None = None,
        shuffle: bool = True,
        drop_last: bool = False,
    ) -> Iterator[Batch]:
        """One pass over `split` in batches; the same `generator` state gives the same batches."""
        return make_batches(
            self.encoded(split),
            batch_size,
            kind=self.kind,
            shuffle=shuffle,
            generator=generator,
            drop_last=drop_last,
            pad_id=self.tgt_tokenizer.pad_id,
        )

    def num_batches(self, split: str, batch_size: int, *, drop_last: bool = False) -> int:
        """How many batches `batches(split, batch_size, drop_last=...)` yields."""
        check_batch_size(batch_size)
        n = len(self.split(split))
        return n // batch_size if drop_last else -(-n // batch_size)

    def sample_batch(
        self, split: str, batch_size: int, *, generator: torch.Generator | None = None
    ) -> Batch:
        """A batch of distinct random examples (all of them when the split is smaller).

        Stateless apart from `generator`, so a trainer that checkpoints its generator resumes
        with exactly the batches it would have seen.
        """
        check_batch_size(batch_size)
        encoded = self.encoded(split)
        if not encoded:
            raise ValueError(f"task {self.name!r}: split {split!r} is empty")
        chosen = torch.randperm(len(encoded), generator=generator)[:batch_size].tolist()
        return collate([encoded[i] for i in chosen], kind=self.kind, pad_id=self.pad_id)

    @property
    def pad_id(self) -> int:
        return self.tgt_tokenizer.pad_id

    def probe_batch(self, n: int = 4, split: str = "valid") -> ProbeBatch:
        """The first `n` examples of `split` (fewer if the split is smaller) as a fixed batch.

        Used to record attention on the same inputs throughout training.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"probe_batch: n must be a positive integer, got {n!r}")
        examples = self.split(split)[:n]
        if not examples:
            raise ValueError(f"task {self.name!r}: split {split!r} is empty; no probe batch")
        items = self.encoded(split)[: len(examples)]
        batch = collate(items, kind=self.kind, pad_id=self.pad_id)
        eos, bos = SPECIAL_TOKENS[2], SPECIAL_TOKENS[1]
        src_tokens = (
            None
            if self.kind == "lm"
            else [[*self.src_tokenizer.tokens_to_strings(s), eos] for s, _ in items]
        )
        tgt_strings = [self.tgt_tokenizer.tokens_to_strings(t) for _, t in items]
        return ProbeBatch(
            batch=batch,
            src_tokens=src_tokens,
            tgt_in_tokens=[[bos, *t] for t in tgt_strings],
            tgt_out_tokens=[[*t, eos] for t in tgt_strings],
            examples=list(examples),
        )
