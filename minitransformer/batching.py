"""Batches: pad id sequences into tensors with the <bos>/<eos> conventions of the model.

For a sequence-to-sequence pair of ids (no specials) `src_ids`, `tgt_ids`:

    src     = src_ids + [EOS]          what the encoder reads          (B, S)
    tgt_in  = [BOS] + tgt_ids          what the decoder reads          (B, T)
    tgt_out = tgt_ids + [EOS]          what the decoder must predict   (B, T)

so decoder position i reads tgt_in[i] and predicts tgt_out[i] (= tgt_ids[i] for i < len).
A language-model sequence has no `src` (None) and the same tgt_in / tgt_out. Every row is
padded on the right with `pad_id` (0); the loss ignores `pad_id` in `tgt_out`.

    batch = collate_seq2seq([([5, 6], [7]), ([5], [8, 9])])
    batch.src      # tensor([[5, 6, 2], [5, 2, 0]])
    batch.tgt_in   # tensor([[1, 7, 0], [1, 8, 9]])
    batch.tgt_out  # tensor([[7, 2, 0], [8, 9, 2]])
    batch.n_tokens # 5 (non-pad target tokens)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .tokenizer import BOS_ID, EOS_ID, PAD_ID

KINDS = ("seq2seq", "lm")
IdPair = tuple[Sequence[int], Sequence[int]]


@dataclass
class Batch:
    """One padded batch. `src` is None for language-model (decoder-only) batches.

    src: (B, S) long or None; tgt_in: (B, T) long; tgt_out: (B, T) long;
    n_tokens: number of non-pad entries of tgt_out (what a per-token loss averages over).
    """

    src: Tensor | None
    tgt_in: Tensor
    tgt_out: Tensor
    n_tokens: int

    @property
    def batch_size(self) -> int:
        return int(self.tgt_in.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """A copy of the batch on `device` (no copy for tensors already there)."""

        def move(t: Tensor) -> Tensor:
            return t.to(device, non_blocking=non_blocking)

        src = None if self.src is None else move(self.src)
        return Batch(src, move(self.tgt_in), move(self.tgt_out), self.n_tokens)

    def pin_memory(self) -> Batch:
        """The batch in page-locked memory for fast, non-blocking copies to a GPU.

        Without CUDA there is nothing to pin for, and the batch is returned as it is.
        """
        if not torch.cuda.is_available():
            return self
        src = None if self.src is None else self.src.pin_memory()
        return Batch(src, self.tgt_in.pin_memory(), self.tgt_out.pin_memory(), self.n_tokens)


def collate_seq2seq(
    pairs_of_ids: Sequence[IdPair],
    pad_id: int = PAD_ID,
    bos_id: int = BOS_ID,
    eos_id: int = EOS_ID,
) -> Batch:
    """Pad (src_ids, tgt_ids) pairs (no specials) into a Batch; see the module docstring."""
    if len(pairs_of_ids) == 0:
        raise ValueError("collate_seq2seq got an empty list of pairs; a batch needs at least one")
    for k, pair in enumerate(pairs_of_ids):
        if len(pair) != 2:
            raise ValueError(
                f"collate_seq2seq: item {k} has {len(pair)} parts; expected (src_ids, tgt_ids)"
            )
    src_rows = [[*src, eos_id] for src, _ in pairs_of_ids]
    tgt_in_rows = [[bos_id, *tgt] for _, tgt in pairs_of_ids]
    tgt_out_rows = [[*tgt, eos_id] for _, tgt in pairs_of_ids]
    return _make_batch(_pad(src_rows, pad_id), tgt_in_rows, tgt_out_rows, pad_id)


def collate_lm(
    sequences: Sequence[Sequence[int]],
    pad_id: int = PAD_ID,
    bos_id: int = BOS_ID,
    eos_id: int = EOS_ID,
) -> Batch:
    """Pad language-model id sequences (no specials) into a Batch with `src=None`."""
    if len(sequences) == 0:
        raise ValueError("collate_lm got an empty list of sequences; a batch needs at least one")
    tgt_in_rows = [[bos_id, *seq] for seq in sequences]
    tgt_out_rows = [[*seq, eos_id] for seq in sequences]
    return _make_batch(None, tgt_in_rows, tgt_out_rows, pad_id)


def make_batches(
    encoded: Sequence[IdPair],
    batch_size: int,
    *,
    kind: str = "seq2seq",
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
    pad_id: int = PAD_ID,
) -> Iterator[Batch]:
    """Yield Batches over pre-tokenised (src_ids, tgt_ids) pairs, one pass (an epoch).

    The order is a `torch.randperm` drawn from `generator` (the global torch RNG when None),
    so the same generator state gives the same batches. For `kind="lm"` only tgt_ids are used.
    """
    if kind not in KINDS:
        raise ValueError(f"make_batches: kind {kind!r} is not known; choose one of {KINDS}")
    check_batch_size(batch_size)
    n = len(encoded)
    if n == 0:
        raise ValueError("make_batches got no examples (the split is empty)")
    order = torch.randperm(n, generator=generator).tolist() if shuffle else list(range(n))
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        chosen = [encoded[i] for i in order[start : start + batch_size]]
        yield collate(chosen, kind=kind, pad_id=pad_id)


def collate(items: Sequence[IdPair], *, kind: str, pad_id: int = PAD_ID) -> Batch:
    """`collate_seq2seq` or `collate_lm` (on the tgt ids) according to `kind`."""
    if kind == "lm":
        return collate_lm([tgt for _, tgt in items], pad_id=pad_id)
    if kind == "seq2seq":
        return collate_seq2seq(items, pad_id=pad_id)
    raise ValueError(f"collate: kind {kind!r} is not known; choose one of {KINDS}")


def check_batch_size(batch_size: int) -> None:
    """Raise ValueError unless `batch_size` is a positive integer."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def _pad(rows: list[list[int]], pad_id: int) -> Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [pad_id] * (width - len(r)) for r in rows], dtype=torch.long)


def _make_batch(
    src: Tensor | None, tgt_in_rows: list[list[int]], tgt_out_rows: list[list[int]], pad_id: int
) -> Batch:
    tgt_in = _pad(tgt_in_rows, pad_id)  # (B, T)
    tgt_out = _pad(tgt_out_rows, pad_id)  # (B, T)
    n_tokens = int((tgt_out != pad_id).sum())
    return Batch(src=src, tgt_in=tgt_in, tgt_out=tgt_out, n_tokens=n_tokens)
