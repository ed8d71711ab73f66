"""Per-head statistics, alignment accuracy, head ablation, head importance and attention
rollout: exact answers on synthetic attention, invariants on tiny models, and (slow) alignment
heads that training actually finds on the reverse and number-translation tasks."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import minitransformer as mt
from minitransformer.analysis import (
    ablate_heads,
    alignment_accuracy,
    attention_modules,
    attention_rollout,
    batch_loss,
    best_alignment_head,
    entropy,
    head_importance,
    head_stats,
    mean_distance,
)
from minitransformer.recorder import AttentionCache, record

VOCAB = 14
SRC = torch.tensor([[5, 6, 7, 8, 2], [9, 10, 2, 0, 0]])
TGT_IN = torch.tensor([[1, 8, 7, 6, 5], [1, 10, 9, 0, 0]])
TGT_OUT = torch.tensor([[8, 7, 6, 5, 2], [10, 9, 2, 0, 0]])


def make_model(arch: str = "encoder_decoder", seed: int = 0, **overrides) -> mt.Transformer:
    torch.manual_seed(seed)
    cfg = mt.ModelConfig.tiny(vocab_size=VOCAB, arch=arch, d_model=32, n_heads=4, d_ff=64,
                              dropout=0.0, **overrides)
    return mt.build_model(cfg).eval()


def synthetic_cache(weights: dict, n: int, src_tokens=None, tgt_tokens=None) -> AttentionCache:
    """A cache from hand-made (B, H, n, n) tensors with labels a, b, c, ..."""
    labels = [[chr(97 + i) for i in range(n)]]
    return AttentionCache(weights, src_tokens or labels, tgt_tokens or labels)


def diagonal(n: int) -> torch.Tensor:
    return torch.eye(n)


def anti_diagonal(n: int) -> torch.Tensor:
    return torch.eye(n).flip(-1)


# ---- statistics ----------------------------------------------------------------------------------
def test_entropy_uniform_and_one_hot():
    n = 6
    uniform = torch.full((n,), 1 / n)
    assert entropy(uniform).item() == pytest.approx(math.log(n), abs=1e-6)
    assert entropy(torch.eye(n)).tolist() == [0.0] * n
    # masked (zero) keys add nothing: uniform over the 3 real keys of 6
    masked = torch.tensor([1 / 3, 1 / 3, 1 / 3, 0, 0, 0])
    assert entropy(masked).item() == pytest.approx(math.log(3), abs=1e-6)


def test_mean_distance():
    assert mean_distance(torch.eye(4)).tolist() == [0.0] * 4
    assert mean_distance(anti_diagonal(4)).tolist() == [3.0, 1.0, 1.0, 3.0]
    row = torch.tensor([[0.5, 0.5, 0.0]])  # query 0: half on itself, half one step away
    assert mean_distance(row).tolist() == [0.5]


def test_head_stats_on_synthetic_heads():
    n = 5
    uniform = torch.full((n, n), 1 / n)
    on_first = torch.zeros(n, n)
    on_first[:, 0] = 1.0  # every query attends to position 0 (labelled <bos>)
    heads = torch.stack([diagonal(n), uniform, on_first, anti_diagonal(n)])[None]  # (1, 4, n, n)
    tokens = [["<bos>", "a", "b", "c", "<eos>"]]
    cache = synthetic_cache({("decoder", 0, "self"): heads, ("decoder", 0, "cross"): heads},
                            n, src_tokens=tokens, tgt_tokens=tokens)
    stats = head_stats(cache)
    assert set(stats) == {("decoder", "self"), ("decoder", "cross")}
    s = stats[("decoder", "cross")]
    assert set(s) == {"entropy", "distance", "special", "max_weight"}
    assert s["entropy"].shape == (1, 4)
    assert s["entropy"][0].tolist() == pytest.approx([0.0, math.log(n), 0.0, 0.0], abs=1e-6)
    assert s["distance"][0].tolist() == pytest.approx([0.0, 1.6, 2.0, 2.4], abs=1e-6)
    # specials <bos> and <eos>: diagonal hits them on 2 of 5 rows; uniform puts 2/5 there
    assert s["special"][0].tolist() == pytest.approx([0.4, 0.4, 1.0, 0.4], abs=1e-6)
    assert s["max_weight"][0].tolist() == pytest.approx([1.0, 0.2, 1.0, 1.0], abs=1e-6)
    only_bos = head_stats(cache, special_tokens=["<bos>"])[("decoder", "self")]["special"]
    assert only_bos[0].tolist() == pytest.approx([0.2, 0.2, 1.0, 0.2], abs=1e-6)


def test_head_stats_ignore_padding_rows(seq2seq_cache):
    stats = head_stats(seq2seq_cache)
    assert set(stats) == {("encoder", "self"), ("decoder", "self"), ("decoder", "cross")}
    for group in stats.values():
        for name, value in group.items():
            assert value.shape == (2, 4), name
            assert torch.isfinite(value).all()
    # entropy of a row over k real keys is at most log k: the encoder's rows see <= 5 keys
    assert (stats[("encoder", "self")]["entropy"] <= math.log(5) + 1e-5).all()
    # padding query rows are excluded: the stats equal those of the trimmed examples, weighted
    one = head_stats(seq2seq_cache.example(0))[("encoder", "self")]["entropy"]
    two = head_stats(seq2seq_cache.example(1))[("encoder", "self")]["entropy"]
    both = stats[("encoder", "self")]["entropy"]
    assert torch.allclose(both, (5 * one + 3 * two) / 8, atol=1e-5)


@pytest.fixture(scope="module")
def seq2seq_cache():
    return record(make_model(), SRC, TGT_IN)


# ---- alignment -----------------------------------------------------------------------------------
def test_alignment_accuracy_diagonal_and_anti_diagonal():
    n = 6
    attn = torch.stack([diagonal(n), anti_diagonal(n)])[None]  # (B=1, H=2, T, S)
    gold = diagonal(n)[None]  # (1, T, S)
    assert alignment_accuracy(attn, gold).tolist() == [1.0, 0.0]
    assert alignment_accuracy(attn, anti_diagonal(n)[None]).tolist() == [0.0, 1.0]


def test_alignment_accuracy_counts_only_rows_with_gold():
    n = 5
    attn = diagonal(n)[None, None].clone()  # (1, 1, 5, 5)
    attn[0, 0, 4] = torch.tensor([1.0, 0, 0, 0, 0])  # last row (EOS) wrong, but it has no gold
    gold = diagonal(4)  # (T'=4, S'=4): smaller than the attention, padded with "no gold"
    assert alignment_accuracy(attn, [gold]).tolist() == [1.0]
    attn[0, 0, 1] = torch.tensor([1.0, 0, 0, 0, 0])  # now one of the 4 gold rows misses
    assert alignment_accuracy(attn, [gold]).tolist() == [0.75]


def test_alignment_accuracy_from_a_cache_and_best_head():
    n = 4
    uniform = torch.full((n, n), 1 / n)
    layer0 = torch.stack([uniform, anti_diagonal(n), uniform])[None]
    layer1 = torch.stack([uniform, uniform, diagonal(n)])[None]
    self_attn = torch.stack([diagonal(n)] * 3)[None]
    cache = synthetic_cache({("decoder", 0, "cross"): layer0, ("decoder", 1, "cross"): layer1,
                             ("decoder", 0, "self"): self_attn,
                             ("decoder", 1, "self"): self_attn}, n)
    acc = alignment_accuracy(cache, diagonal(n))
    assert acc.shape == (2, 3)
    assert acc[1, 2] == 1.0 and acc[0, 1] == 0.0
    assert best_alignment_head(cache, diagonal(n)) == (1, 2, 1.0)
    assert best_alignment_head(cache, anti_diagonal(n)) == (0, 1, 1.0)


def test_alignment_bad_input(seq2seq_cache):
    lm_cache = record(make_model("decoder_only"), None, TGT_IN)
    with pytest.raises(KeyError, match="decoder-only model has no cross-attention"):
        alignment_accuracy(lm_cache, torch.eye(5))
    with pytest.raises(ValueError, match="gold holds 1 examples but the attention has batch "
                                         "size 2"):
        alignment_accuracy(seq2seq_cache, [torch.eye(3)])
    with pytest.raises(ValueError, match=r"gold\[0\] has shape \(7, 7\)"):
        alignment_accuracy(seq2seq_cache, [torch.eye(7), torch.eye(3)])
    with pytest.raises(ValueError, match="no aligned target position"):
        alignment_accuracy(seq2seq_cache, torch.zeros(2, 5, 5))


# ---- ablation ------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["encoder_decoder", "decoder_only"])
def test_ablation_changes_output_and_restores_exactly(arch):
    model = make_model(arch)
    src = SRC if arch == "encoder_decoder" else None
    key = ("decoder", 1, "cross") if arch == "encoder_decoder" else ("decoder", 1, "self")
    with torch.no_grad():
        before = model(src, TGT_IN).logits
        with ablate_heads(model, {key: [0, 2], ("decoder", 0, "self"): [1]}):
            fused = model(src, TGT_IN).logits
            explicit = model(src, TGT_IN, output_attentions=True).logits
        after = model(src, TGT_IN).logits
    assert not torch.allclose(fused, before, atol=1e-4)
    assert torch.allclose(fused, explicit, atol=1e-5)  # both attention paths are ablated
    assert torch.equal(after, before)
    for module in model.modules():
        assert not module._forward_pre_hooks


def test_ablation_restores_on_exception():
    model = make_model()
    with torch.no_grad():
        before = model(SRC, TGT_IN).logits
    with pytest.raises(RuntimeError, match="boom"):
        with ablate_heads(model, {("encoder", 0, "self"): [0, 1, 2, 3]}):
            raise RuntimeError("boom")
    with torch.no_grad():
        assert torch.equal(model(SRC, TGT_IN).logits, before)


def test_ablating_every_head_removes_the_attention_contribution():
    """All heads of a layer off == that attention passing on only out_proj's bias."""
    model = make_model()
    zeroed = copy.deepcopy(model)
    with torch.no_grad():
        zeroed.decoder_layers[0].src_attn.out_proj.weight.zero_()
        expected = zeroed(SRC, TGT_IN).logits
        with ablate_heads(model, {("decoder", 0, "cross"): range(4)}):
            got = model(SRC, TGT_IN).logits
    assert torch.allclose(got, expected, atol=1e-6)


def test_ablation_applies_to_cached_decoding():
    model = make_model()
    key = {("decoder", 0, "cross"): [1], ("decoder", 1, "self"): [0, 3]}
    with torch.no_grad(), ablate_heads(model, key):
        full = model(SRC, TGT_IN).logits
        memory = model.encode(SRC)
        cache = mt.KVCache()
        steps = [model.decode(TGT_IN[:, t : t + 1], memory, SRC, cache=cache)
                 for t in range(3)]
    assert torch.allclose(torch.cat(steps, 1), full[:, :3], atol=1e-5)


def test_ablation_bad_input():
    model = make_model()
    lm = make_model("decoder_only")
    with pytest.raises(KeyError, match=r"no \('decoder', 0, 'cross'\) in this model.*"
                                       "decoder-only model has no cross-attention"):
        with ablate_heads(lm, {("decoder", 0, "cross"): [0]}):
            pass
    with pytest.raises(KeyError, match=r"no \('encoder', 2, 'self'\) in this model"):
        with ablate_heads(model, {("encoder", 2, "self"): [0]}):
            pass
    with pytest.raises(IndexError, match=r"head\(s\) \[4\] of \('decoder', 0, 'self'\) are out "
                                         r"of range; it has 4 heads \(0\.\.3\)"):
        with ablate_heads(model, {("decoder", 0, "self"): [1, 4]}):
            pass
    with pytest.raises(KeyError, match="not an attention key"):
        with ablate_heads(model, {("middle", 0, "self"): [0]}):
            pass
    for module in model.modules():  # nothing was attached by the failed calls
        assert not module._forward_pre_hooks


def test_head_importance():
    model = make_model()
    model.train()
    batch = (SRC, TGT_IN, TGT_OUT)
    importance = head_importance(model, batch)
    assert model.training  # mode restored
    assert set(importance) == {("encoder", "self"), ("decoder", "self"), ("decoder", "cross")}
    assert all(v.shape == (2, 4) for v in importance.values())
    base = batch_loss(model, batch)
    with ablate_heads(model, {("decoder", 1, "cross"): [2]}):
        ablated = batch_loss(model, batch)
    assert importance[("decoder", "cross")][1, 2].item() == pytest.approx(ablated - base,
                                                                           abs=1e-6)
    assert importance[("decoder", "cross")].abs().sum() > 0
    assert list(attention_modules(model))[0] == ("encoder", 0, "self")


# ---- rollout -------------------------------------------------------------------------------------
def test_rollout_rows_sum_to_one_and_match_the_formula(seq2seq_cache):
    for stack in ("encoder", "decoder"):
        for example in (0, 1):
            rollout = attention_rollout(seq2seq_cache, stack, example)
            n = len(seq2seq_cache.query_tokens((stack, 0, "self"), example))
            assert rollout.shape == (n, n)
            assert torch.allclose(rollout.sum(-1), torch.ones(n), atol=1e-5)
    layers = seq2seq_cache.stacked("encoder", "self", 0)  # (L, H, T, T)
    a = [0.5 * torch.eye(5) + 0.5 * layer.mean(0) for layer in layers]
    a = [m / m.sum(-1, keepdim=True) for m in a]
    assert torch.allclose(attention_rollout(seq2seq_cache, "encoder"), a[1] @ a[0], atol=1e-6)
    causal = attention_rollout(seq2seq_cache, "decoder")
    assert torch.equal(causal, causal.tril())  # causality survives the product


def test_rollout_of_identity_attention_is_identity():
    n = 4
    eye = torch.eye(n)[None, None].expand(1, 2, n, n)
    cache = synthetic_cache({("encoder", 0, "self"): eye, ("encoder", 1, "self"): eye,
                             ("decoder", 0, "self"): eye}, n)
    assert torch.allclose(attention_rollout(cache, "encoder"), torch.eye(n))
    with pytest.raises(ValueError, match="residual must be in"):
        attention_rollout(cache, residual=1.5)
    lm_cache = record(make_model("decoder_only"), None, TGT_IN)
    with pytest.raises(KeyError, match="no encoder"):
        attention_rollout(lm_cache, "encoder")


# ---- trained models: the heads that training finds (slow) ---------------------------------------

def train_and_record(task_name: str, steps: int, **model_overrides):
    """Train a tiny model with the project's own trainer (classroom recipe, seed 0, CPU) and
    record its attention on the first 100 validation examples, with their gold alignments."""
    task = mt.get_task(task_name, seed=0)
    mt.seed_everything(0)
    cfg = mt.ModelConfig.tiny(vocab_size=task.tgt_tokenizer.vocab_size,
                              src_vocab_size=task.src_tokenizer.vocab_size, dropout=0.0,
                              **model_overrides)
    model = mt.build_model(cfg)
    trainer = mt.Trainer(model, task, mt.TrainConfig.classroom(device="cpu", progress=False))
    trainer.run(steps)
    probe = task.probe_batch(n=100, split="valid")
    gold = [task.gold_alignment_matrix(ex, include_specials=True) for ex in task.valid[:100]]
    cache = record(model, probe.batch.src, probe.batch.tgt_in, probe.src_tokens,
                   probe.tgt_in_tokens)
    return model, probe, cache, gold


@pytest.mark.slow
def test_reverse_task_grows_an_anti_diagonal_alignment_head():
    """One decoder layer with rotary positions: 400 steps (about 10-25 s on one CPU thread) give
    a cross-attention head whose argmax hits the mirrored source position on >= 95% of rows."""
    model, probe, cache, gold = train_and_record("reverse", 400, n_decoder_layers=1,
                                                 pos_encoding="rope")
    layer, head, accuracy = best_alignment_head(cache, gold)
    assert accuracy >= 0.95, (layer, head, alignment_accuracy(cache, gold))
    # without any cross-attention the decoder cannot know what to reverse
    batch = (probe.batch.src, probe.batch.tgt_in, probe.batch.tgt_out)
    with ablate_heads(model, {("decoder", 0, "cross"): range(4)}):
        blind = batch_loss(model, batch)
    assert blind > batch_loss(model, batch) + 1.0


@pytest.mark.slow
def test_number_translation_has_an_alignment_head():
    """English -> German number words ("twenty one" -> "ein und zwanzig", units before tens):
    after 200 steps a cross-attention head follows the word alignment on >= 85% of rows."""
    _, _, cache, gold = train_and_record("numbers_en_de", 200)
    layer, head, accuracy = best_alignment_head(cache, gold)
    assert accuracy >= 0.85, (layer, head, alignment_accuracy(cache, gold))
