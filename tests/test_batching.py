"""Batching: shapes, padding, <bos>/<eos> placement, reproducible order, task batches."""

from __future__ import annotations

import pytest
import torch

import minitransformer as mt


def test_collate_seq2seq_pads_and_places_specials():
    batch = mt.collate_seq2seq([([5, 6], [7]), ([5], [8, 9])])
    assert torch.equal(batch.src, torch.tensor([[5, 6, 2], [5, 2, 0]]))
    assert torch.equal(batch.tgt_in, torch.tensor([[1, 7, 0], [1, 8, 9]]))
    assert torch.equal(batch.tgt_out, torch.tensor([[7, 2, 0], [8, 9, 2]]))
    assert batch.n_tokens == 5
    assert batch.src.dtype == batch.tgt_in.dtype == torch.long
    assert batch.batch_size == 2


def test_collate_lm_has_no_src_and_shifts_by_one():
    batch = mt.collate_lm([[4, 5, 6], [7]])
    assert batch.src is None
    assert torch.equal(batch.tgt_in, torch.tensor([[1, 4, 5, 6], [1, 7, 0, 0]]))
    assert torch.equal(batch.tgt_out, torch.tensor([[4, 5, 6, 2], [7, 2, 0, 0]]))
    assert torch.equal(batch.tgt_in[:, 1:], batch.tgt_out[:, :-1].masked_fill(
        batch.tgt_out[:, :-1] == 2, 0))  # fmt: skip
    assert batch.n_tokens == 6


def test_custom_pad_id_is_used():
    batch = mt.collate_seq2seq([([5], [6, 7]), ([5, 5, 5], [6])], pad_id=9)
    assert batch.src[0].tolist() == [5, 2, 9, 9]
    assert batch.tgt_out[1].tolist() == [6, 2, 9]
    assert batch.n_tokens == 5


def test_empty_batches_are_errors():
    with pytest.raises(ValueError, match="empty"):
        mt.collate_seq2seq([])
    with pytest.raises(ValueError, match="empty"):
        mt.collate_lm([])
    with pytest.raises(ValueError, match="item 0 has 3 parts"):
        mt.collate_seq2seq([([1], [2], [3])])  # type: ignore[list-item]


def test_batch_to_and_pin_memory_keep_values():
    batch = mt.collate_seq2seq([([5, 6], [7])])
    moved = batch.to("cpu")
    assert torch.equal(moved.src, batch.src) and moved.n_tokens == batch.n_tokens
    pinned = batch.pin_memory()
    assert torch.equal(pinned.tgt_out, batch.tgt_out)
    lm = mt.collate_lm([[4]]).to(torch.device("cpu"), non_blocking=True)
    assert lm.src is None


def items(n: int) -> list[tuple[list[int], list[int]]]:
    return [([4 + i % 5] * (1 + i % 3), [4 + i % 7] * (1 + i % 4)) for i in range(n)]


def test_make_batches_covers_every_example_once():
    data = items(10)
    batches = list(mt.make_batches(data, 4, shuffle=False))
    assert [b.batch_size for b in batches] == [4, 4, 2]
    assert sum(b.n_tokens for b in batches) == sum(len(t) + 1 for _, t in data)
    assert len(list(mt.make_batches(data, 4, drop_last=True))) == 2


def test_make_batches_is_reproducible_from_the_generator():
    data = items(50)

    def order(seed: int) -> list[list[int]]:
        gen = torch.Generator().manual_seed(seed)
        return [b.src.tolist() for b in mt.make_batches(data, 8, generator=gen)]

    assert order(1) == order(1)
    assert order(1) != order(2)


def test_make_batches_rejects_bad_arguments():
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        list(mt.make_batches(items(3), 0))
    with pytest.raises(ValueError, match="'mlm'"):
        list(mt.make_batches(items(3), 2, kind="mlm"))
    with pytest.raises(ValueError, match="no examples"):
        list(mt.make_batches([], 2))


def test_task_batches_match_the_tokenizers():
    task = mt.get_task("copy", n_train=40, n_valid=8, n_test=8)
    gen = torch.Generator().manual_seed(0)
    batches = list(task.batches("train", 16, generator=gen))
    assert len(batches) == task.num_batches("train", 16) == 3
    first = batches[0]
    assert first.src.shape[0] == 16 and first.tgt_in.shape == first.tgt_out.shape
    assert (first.tgt_in[:, 0] == task.tgt_tokenizer.bos_id).all()
    # every row: <eos> right after the last source token, then only padding
    for row, out_row in zip(first.src.tolist(), first.tgt_out.tolist(), strict=True):
        n = row.index(2)
        assert all(x == 0 for x in row[n + 1 :]) and 0 not in row[:n]
        text = task.src_tokenizer.decode(row)
        assert task.tgt_tokenizer.decode(out_row) == text  # copy task: labels equal the source
    again = list(task.batches("train", 16, generator=torch.Generator().manual_seed(0)))
    assert all(torch.equal(a.src, b.src) for a, b in zip(batches, again, strict=True))
    assert task.max_src_len >= first.src.shape[1]


def test_task_batches_are_cached_and_lm_batches_have_no_src():
    task = mt.get_task("arithmetic_lm", n_train=30, n_valid=5, n_test=5)
    assert task.encoded("train") is task.encoded("train")  # tokenised once
    batch = next(task.batches("valid", 5, shuffle=False))
    assert batch.src is None
    assert task.tgt_tokenizer.decode(batch.tgt_in[0]) == task.valid[0].tgt
    assert batch.tgt_in.shape[1] <= task.max_tgt_len


def test_sample_batch_is_stateless_given_the_generator():
    task = mt.get_task("reverse", n_train=50, n_valid=5, n_test=5)
    a = task.sample_batch("train", 8, generator=torch.Generator().manual_seed(3))
    b = task.sample_batch("train", 8, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.src, b.src) and a.batch_size == 8
    assert task.sample_batch("valid", 100).batch_size == 5  # capped at the split size


def test_probe_batch_is_fixed_and_labelled():
    task = mt.get_task("numbers_en_de")
    probe = task.probe_batch(n=3)
    again = task.probe_batch(n=3)
    assert torch.equal(probe.batch.src, again.batch.src)
    assert probe.examples == task.valid[:3]
    b = 0
    ex = probe.examples[b]
    assert probe.src_tokens[b] == [*ex.src.split(), "<eos>"]
    assert probe.tgt_in_tokens[b] == ["<bos>", *ex.tgt.split()]
    assert probe.tgt_out_tokens[b] == [*ex.tgt.split(), "<eos>"]
    n_src = len(probe.src_tokens[b])
    assert probe.batch.src[b, :n_src].tolist() == task.src_tokenizer.encode(ex.src, add_eos=True)
    batch, src_tokens, *_ = probe  # unpacks like a tuple
    assert batch is probe.batch and src_tokens is probe.src_tokens
    lm_probe = mt.get_task("grammar_lm", n_train=20, n_valid=5, n_test=5).probe_batch(2)
    assert lm_probe.src_tokens is None and lm_probe.batch.src is None
    with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
        task.probe_batch(0)
    with pytest.raises(ValueError, match="'dev'"):
        task.probe_batch(2, split="dev")
