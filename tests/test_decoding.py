"""Decoding: greedy search, beam search and sampling, with and without the key/value cache.

Every check runs on tiny untrained CPU models (or a scripted stand-in whose next token is fixed),
so each decoded sequence is a deterministic function of the weights and the inputs.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import minitransformer as mt

ARCHS = ("encoder_decoder", "decoder_only")
POS_ENCODINGS = ("sinusoidal", "learned", "rope", "none")
METHODS = ("greedy", "beam", "sample")
PAD, BOS, EOS = 0, 1, 2
VOCAB = 13  # ids 0..3 are specials, 4..12 ordinary tokens
BATCH = 3



def tiny_model(arch: str, pos: str = "sinusoidal", seed: int = 0, max_len: int = 32,
               eos_bias: float | None = None) -> mt.Transformer:
    """A tiny untrained model (in train mode, as after build_model). `eos_bias` replaces the
    output projection by one with that bias on EOS: large = always stop, negative = never."""
    torch.manual_seed(seed)
    cfg = mt.ModelConfig(arch=arch, tgt_vocab_size=VOCAB, d_model=32, n_heads=4,
                         n_encoder_layers=2, n_decoder_layers=2, d_ff=64, dropout=0.1,
                         max_len=max_len, pos_encoding=pos)
    model = mt.build_model(cfg)
    if eos_bias is not None:
        old = model.output_proj
        new = nn.Linear(old.in_features, old.out_features, bias=True)
        with torch.no_grad():
            new.weight.copy_(old.weight)
            new.bias.zero_()
            new.bias[EOS] = eos_bias
        model.output_proj = new
    return model


def inputs(arch: str, seed: int = 0, batch: int = BATCH, padded: bool = False):
    """(src, prompt): src (B, 6) for encoder-decoder (rows of different lengths when `padded`),
    or prompt (B, 3) = BOS + two tokens for decoder-only."""
    gen = torch.Generator().manual_seed(seed)
    if arch == "encoder_decoder":
        src = torch.randint(4, VOCAB, (batch, 6), generator=gen)
        if padded:
            for row in range(batch):
                src[row, 6 - row:] = PAD  # lengths 6, 5, 4, ...
        return src, None
    prompt = torch.randint(4, VOCAB, (batch, 3), generator=gen)
    prompt[:, 0] = BOS
    return None, prompt


def decode(method: str, model, src, prompt, seed: int = 0, **kwargs) -> mt.DecodeResult:
    if method == "greedy":
        return mt.greedy_decode(model, src, prompt=prompt, **kwargs)
    if method == "beam":
        return mt.beam_search(model, src, prompt=prompt, **kwargs)
    generator = torch.Generator().manual_seed(seed)
    return mt.sample(model, src, prompt=prompt, generator=generator, **kwargs)


def teacher_forced_log_probs(model, src, prompt, result: mt.DecodeResult) -> torch.Tensor:
    """Sum of log p(token | prefix) of each row's generated tokens, by one full forward pass."""
    model.eval()
    totals = []
    for row in range(result.tokens.size(0)):
        generated = result.tokens[row, : int(result.lengths[row])]
        prefix = prompt[row] if prompt is not None else torch.tensor([BOS])
        tgt = torch.cat([prefix, generated[:-1]])[None]  # (1, P + n - 1)
        row_src = src[row : row + 1] if src is not None else None
        log_probs = torch.log_softmax(model(row_src, tgt).logits[0].float(), dim=-1)
        predicted = log_probs[len(prefix) - 1 :]  # positions that predict the generated tokens
        totals.append(predicted.gather(1, generated[:, None]).sum())
    return torch.stack(totals)


class BigramModel(nn.Module):
    """A stand-in decoder-only model whose next-token probabilities depend on the last token
    only: `table[t]` (V,) after token t. Works with and without a KVCache."""

    is_encoder_decoder = False

    def __init__(self, table: torch.Tensor, max_len: int = 32):
        super().__init__()
        self.config = mt.ModelConfig(arch="decoder_only", tgt_vocab_size=table.size(0),
                                     max_len=max_len)
        table = table / table.sum(dim=-1, keepdim=True)
        self.log_table = nn.Parameter(table.log(), requires_grad=False)  # (V, V)

    def decode(self, tgt, memory=None, src=None, cache=None):
        if cache is not None:
            cache.length += tgt.size(1)
        return self.log_table[tgt]  # (B, T, V)


def counting_model(last: int = 8) -> BigramModel:
    """After token t comes t + 1 (almost surely), and EOS after `last`."""
    table = torch.full((VOCAB, VOCAB), 1e-9)
    for token in range(VOCAB):
        table[token, EOS if token >= last else token + 1] = 1.0
    return BigramModel(table)


def greedy_trap_model() -> BigramModel:
    """The first token 4 (p 0.5) beats 5 (p 0.4), but only 5 is followed by a confident EOS:
    greedy says 4 6 EOS (p .5 x .15 x .9), beam search 5 EOS (p .4 x .9)."""
    table = torch.full((VOCAB, VOCAB), 1e-9)
    table[:, EOS] = 0.9  # after most tokens: stop
    table[:, 7] = 0.1
    table[BOS] = torch.tensor([0, 0, 0.02, 0, 0.5, 0.4, 0.01, 0.01, 0.02, 0.01, 0.01, 0.01, 0.01])
    table[4] = torch.tensor([0, 0, 0.05, 0, 0.12, 0.1, 0.15, 0.1, 0.1, 0.1, 0.1, 0.04, 0.14])
    return BigramModel(table + 1e-9)


# ---- stopping ---------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("arch", ARCHS)
def test_stops_at_eos(arch, method):
    model = tiny_model(arch, eos_bias=1e4)
    src, prompt = inputs(arch)
    result = decode(method, model, src, prompt, max_new_tokens=10)
    assert result.tokens.tolist() == [[EOS]] * BATCH
    assert result.lengths.tolist() == [1] * BATCH
    assert result.finished.all()
    assert result.to_lists() == [[]] * BATCH


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("use_cache", [True, False])
def test_rows_stop_at_their_own_eos_and_pad_after(method, use_cache):
    model = counting_model(last=8)
    prompt = torch.tensor([[BOS, 4], [BOS, 7], [BOS, 8]])
    result = decode(method, model, None, prompt, max_new_tokens=10, use_cache=use_cache)
    assert result.tokens.tolist() == [
        [5, 6, 7, 8, EOS],
        [8, EOS, PAD, PAD, PAD],
        [EOS, PAD, PAD, PAD, PAD],
    ]
    assert result.lengths.tolist() == [5, 2, 1]
    assert result.finished.tolist() == [True, True, True]
    assert result.to_lists() == [[5, 6, 7, 8], [8], []]
    assert result.to_lists(strip=False) == [[5, 6, 7, 8, EOS], [8, EOS], [EOS]]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("arch", ARCHS)
def test_stops_at_max_new_tokens(arch, method):
    model = tiny_model(arch, eos_bias=-1e4)  # EOS never wins
    src, prompt = inputs(arch)
    result = decode(method, model, src, prompt, max_new_tokens=5)
    assert result.tokens.shape == (BATCH, 5)
    assert result.lengths.tolist() == [5] * BATCH
    assert not result.finished.any()
    assert not torch.isin(result.tokens, torch.tensor([PAD, BOS, EOS])).any()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("arch", ARCHS)
def test_never_more_positions_than_max_len(arch, method):
    model = tiny_model(arch, max_len=9, eos_bias=-1e4)
    src, prompt = inputs(arch)  # decoder-only prompt: 3 positions
    result = decode(method, model, src, prompt, max_new_tokens=100)
    fed_back = 1 if prompt is None else prompt.size(1)  # the last new token is never fed
    assert result.tokens.size(1) == 9 - fed_back + 1


# ---- batches ----------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ("greedy", "beam"))
def test_padded_source_batch_equals_rows_alone(method):
    model = tiny_model("encoder_decoder", seed=1, eos_bias=1.0)
    src, _ = inputs("encoder_decoder", padded=True)
    together = decode(method, model, src, None, max_new_tokens=8)
    for row in range(BATCH):
        real = src[row][src[row] != PAD][None]
        alone = decode(method, model, real, None, max_new_tokens=8)
        n = int(alone.lengths[0])
        assert together.tokens[row, :n].tolist() == alone.tokens[0, :n].tolist()
        assert int(together.lengths[row]) == n
        assert torch.allclose(together.scores[row], alone.scores[0], atol=1e-4)


@pytest.mark.parametrize("method", ("greedy", "beam"))
def test_prompts_of_different_lengths_equal_rows_alone(method):
    model = tiny_model("decoder_only", seed=2, eos_bias=1.0)
    prompts = [[BOS, 5, 6, 7], [BOS], [BOS, 9, 4]]
    padded = torch.tensor([p + [PAD] * (4 - len(p)) for p in prompts])
    together = decode(method, model, None, padded, max_new_tokens=8)
    for row, ids in enumerate(prompts):
        alone = decode(method, model, None, torch.tensor([ids]), max_new_tokens=8)
        n = int(alone.lengths[0])
        assert together.tokens[row, :n].tolist() == alone.tokens[0, :n].tolist()
        assert torch.allclose(together.scores[row], alone.scores[0], atol=1e-4)


def test_unconditional_batch_size():
    model = tiny_model("decoder_only", eos_bias=-1e4)
    result = mt.greedy_decode(model, batch_size=4, max_new_tokens=3)
    assert result.tokens.shape == (4, 3)
    assert (result.tokens == result.tokens[0]).all()  # same start, same greedy continuation


# ---- cache ------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("pos", POS_ENCODINGS)
@pytest.mark.parametrize("arch", ARCHS)
def test_cache_equals_no_cache(arch, pos, method):
    model = tiny_model(arch, pos, eos_bias=1.0)
    src, prompt = inputs(arch, padded=True)
    cached = decode(method, model, src, prompt, max_new_tokens=10, use_cache=True)
    full = decode(method, model, src, prompt, max_new_tokens=10, use_cache=False)
    assert torch.equal(cached.tokens, full.tokens)
    assert torch.allclose(cached.scores, full.scores, atol=1e-4)
    assert torch.allclose(cached.log_probs, full.log_probs, atol=1e-4)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("arch", ARCHS)
def test_cache_equals_no_cache_while_its_buffers_grow(arch, method):
    """30 positions: the cache's key/value buffers (room for 16 at first) double twice, and
    beam search reorders them in between."""
    model = tiny_model(arch, eos_bias=-1e4)
    src, prompt = inputs(arch, padded=True)
    cached = decode(method, model, src, prompt, max_new_tokens=27, use_cache=True)
    full = decode(method, model, src, prompt, max_new_tokens=27, use_cache=False)
    assert cached.tokens.size(1) == 27
    assert torch.equal(cached.tokens, full.tokens)
    assert torch.allclose(cached.log_probs, full.log_probs, atol=1e-4)


def test_kv_cache_appends_in_place_and_reorders_rows():
    cache = mt.KVCache()
    k = torch.arange(2 * 1 * 3 * 2, dtype=torch.float32).view(2, 1, 3, 2)  # (B, H, t, Dh)
    cache.append((0, "self"), k, -k)
    for t in range(20):  # one position at a time, past the first buffer's 16
        step = torch.full((2, 1, 1, 2), float(t))
        keys, values = cache.append((0, "self"), step, -step)
    assert keys.shape == (2, 1, 23, 2)
    assert torch.equal(keys[:, :, :3], k) and torch.equal(values[:, :, 3:], -keys[:, :, 3:])
    assert torch.equal(keys[0, 0, 3:, 0], torch.arange(20.0))
    cache.reorder(torch.tensor([1, 1, 0]))
    keys, _ = cache.entries[(0, "self")]
    assert keys.shape == (3, 1, 23, 2) and torch.equal(keys[2, :, :3], k[0])
    keys, _ = cache.append((0, "self"), torch.zeros(3, 1, 1, 2), torch.zeros(3, 1, 1, 2))
    assert keys.shape == (3, 1, 24, 2) and torch.equal(keys[1, :, :3], k[1])


def test_results_are_ordinary_tensors_usable_in_training():
    """Decoding runs in inference mode; what it returns must still feed a training step."""
    model = tiny_model("encoder_decoder")
    src, _ = inputs("encoder_decoder")
    result = mt.greedy_decode(model, src, max_new_tokens=4)
    assert not any(t.is_inference() for t in (result.tokens, result.scores, result.lengths))
    model.train()
    model(src, result.tokens).logits.sum().backward()  # an inference tensor would raise here
    assert model.tgt_embed.weight.grad is not None


# ---- scores -----------------------------------------------------------------------------------
@pytest.mark.parametrize("eos_bias", [-1e4, 0.0])  # -1e4: beams run to the length limit
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("arch", ARCHS)
def test_log_probs_match_teacher_forcing(arch, method, eos_bias):
    model = tiny_model(arch, seed=3, eos_bias=eos_bias)
    src, prompt = inputs(arch, seed=3)
    result = decode(method, model, src, prompt, max_new_tokens=10)
    recomputed = teacher_forced_log_probs(model, src, prompt, result)
    assert torch.allclose(result.log_probs, recomputed, atol=1e-4)
    if method == "beam":
        lp = mt.length_penalty_factor(result.lengths, 0.6)
        assert torch.allclose(result.scores, result.log_probs / lp, atol=1e-5)
    else:
        assert torch.equal(result.scores, result.log_probs)


def test_length_penalty_is_wu_et_al():
    assert mt.length_penalty_factor(1, 0.6) == pytest.approx(1.0)
    assert mt.length_penalty_factor(7, 0.6) == pytest.approx(2.0 ** 0.6)
    assert mt.length_penalty_factor(10, 0.0) == 1.0


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("arch", ARCHS)
def test_beam_size_one_with_early_stopping_is_greedy(arch, seed):
    model = tiny_model(arch, seed=seed, eos_bias=1.5)
    src, prompt = inputs(arch, seed=seed)
    greedy = mt.greedy_decode(model, src, prompt=prompt, max_new_tokens=10)
    beam = mt.beam_search(model, src, prompt=prompt, beam_size=1, early_stopping=True,
                          max_new_tokens=10)
    assert torch.equal(beam.tokens, greedy.tokens)
    assert torch.allclose(beam.log_probs, greedy.log_probs, atol=1e-5)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("arch", ARCHS)
def test_beam_scores_at_least_greedy(arch, seed):
    """Beam search maximises log P / lp(|Y|): on these models it never does worse than greedy
    by that measure (not a theorem: a pruned greedy prefix could in principle be missed)."""
    model = tiny_model(arch, seed=seed, eos_bias=(-1e4, 0.0, 0.5)[seed % 3])
    src, prompt = inputs(arch, seed=seed, batch=4)
    greedy = mt.greedy_decode(model, src, prompt=prompt, max_new_tokens=12)
    beam = mt.beam_search(model, src, prompt=prompt, beam_size=4, max_new_tokens=12)
    greedy_scores = greedy.log_probs / mt.length_penalty_factor(greedy.lengths, 0.6)
    assert (beam.scores >= greedy_scores - 1e-5).all()


@pytest.mark.parametrize("use_cache", [True, False])
def test_beam_search_escapes_the_greedy_trap(use_cache):
    model = greedy_trap_model()
    greedy = mt.greedy_decode(model, batch_size=2, max_new_tokens=5, use_cache=use_cache)
    beam = mt.beam_search(model, batch_size=2, beam_size=2, max_new_tokens=5, use_cache=use_cache)
    assert greedy.to_lists() == [[4, 6]] * 2
    assert beam.to_lists() == [[5]] * 2
    assert torch.allclose(greedy.log_probs, torch.tensor(0.5 * 0.15 * 0.9).log())
    assert torch.allclose(beam.log_probs, torch.tensor(0.4 * 0.9).log())
    assert torch.allclose(beam.scores, beam.log_probs / mt.length_penalty_factor(2, 0.6))


@pytest.mark.parametrize("seed", range(4))
def test_searching_on_never_scores_worse_than_early_stopping(seed):
    model = tiny_model("encoder_decoder", seed=seed, eos_bias=2.0)
    src, _ = inputs("encoder_decoder", seed=seed, batch=4)
    quick = mt.beam_search(model, src, beam_size=3, early_stopping=True, max_new_tokens=12)
    thorough = mt.beam_search(model, src, beam_size=3, early_stopping=False, max_new_tokens=12)
    assert (thorough.scores >= quick.scores - 1e-6).all()


def test_num_return_sequences():
    model = tiny_model("encoder_decoder", seed=4, eos_bias=1.5)
    src, _ = inputs("encoder_decoder", seed=4)
    best = mt.beam_search(model, src, beam_size=4, max_new_tokens=10)
    three = mt.beam_search(model, src, beam_size=4, num_return_sequences=3, max_new_tokens=10)
    assert three.tokens.size(0) == BATCH * 3
    per_source = three.scores.view(BATCH, 3)
    assert (per_source[:, :-1] >= per_source[:, 1:]).all()  # best first
    assert torch.allclose(per_source[:, 0], best.scores)
    width = best.tokens.size(1)
    assert torch.equal(three.tokens[::3, :width], best.tokens)
    assert len({tuple(row) for row in three.to_lists(strip=False)[:3]}) == 3  # distinct


# ---- sampling ---------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHS)
def test_sampling_top_k_1_and_tiny_top_p_are_greedy(arch):
    model = tiny_model(arch, seed=5, eos_bias=1.0)
    src, prompt = inputs(arch, seed=5)
    greedy = mt.greedy_decode(model, src, prompt=prompt, max_new_tokens=10)
    for options in ({"top_k": 1}, {"top_p": 1e-6}, {"top_k": 1, "temperature": 5.0}):
        sampled = decode("sample", model, src, prompt, max_new_tokens=10, **options)
        assert torch.equal(sampled.tokens, greedy.tokens), options


@pytest.mark.parametrize("arch", ARCHS)
def test_same_generator_seed_same_samples(arch):
    model = tiny_model(arch, seed=6, eos_bias=-1e4)
    src, prompt = inputs(arch, seed=6)
    first = decode("sample", model, src, prompt, seed=11, max_new_tokens=12, top_p=0.95)
    again = decode("sample", model, src, prompt, seed=11, max_new_tokens=12, top_p=0.95)
    other = decode("sample", model, src, prompt, seed=12, max_new_tokens=12, top_p=0.95)
    assert torch.equal(first.tokens, again.tokens)
    assert not torch.equal(first.tokens, other.tokens)


def test_filter_logits_nucleus_and_top_k():
    probs = torch.tensor([0.05, 0.5, 0.15, 0.3])  # sorted: 1 (0.5), 3 (0.3), 2 (0.15), 0 (0.05)
    logits = probs.log()

    def kept(**options) -> set[int]:
        out = mt.filter_logits(logits, **options)
        return set(torch.isfinite(out).nonzero().flatten().tolist())

    assert kept(top_p=1e-6) == {1}  # always at least the most likely token
    assert kept(top_p=0.45) == {1}
    assert kept(top_p=0.55) == {1, 3}
    assert kept(top_p=0.79) == {1, 3}
    assert kept(top_p=0.81) == {1, 3, 2}
    assert kept(top_p=1.0) == {0, 1, 2, 3}
    assert kept(top_k=2) == {1, 3}
    assert kept(top_k=10) == {0, 1, 2, 3}
    assert kept(top_k=3, top_p=0.55) == {1, 3}
    batch = mt.filter_logits(torch.stack([logits, logits.flip(0)]), top_p=0.55)  # rows apart
    assert torch.isfinite(batch).sum(dim=1).tolist() == [2, 2]
    assert torch.isfinite(batch[1, [0, 2]]).all()
    assert torch.equal(mt.filter_logits(logits, top_k=2)[[1, 3]], logits[[1, 3]])  # unchanged


def test_sampling_never_leaves_the_top_k():
    model = tiny_model("decoder_only", seed=7, eos_bias=-1e4)
    _, prompt = inputs("decoder_only", seed=7)
    result = decode("sample", model, None, prompt, max_new_tokens=6, top_k=2, temperature=3.0)
    full = torch.cat([prompt, result.tokens], dim=1)
    model.eval()
    logits = model(None, full[:, :-1]).logits[:, prompt.size(1) - 1 :]  # (B, 6, V)
    logits[..., [PAD, BOS]] = float("-inf")  # never generated
    top2 = logits.topk(2, dim=-1).indices  # (B, 6, 2)
    assert (top2 == result.tokens[..., None]).any(dim=-1).all()


# ---- modes and errors ---------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_eval_mode_inside_and_modes_restored(method, monkeypatch):
    model = tiny_model("decoder_only")
    model.train()
    model.decoder_layers[0].eval()  # a mixed state must come back exactly
    before = [m.training for m in model.modules()]
    seen = []
    real_decode = model.decode

    def spy(*args, **kwargs):
        seen.append(model.training or any(m.training for m in model.modules()))
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(model, "decode", spy)
    decode(method, model, None, None, max_new_tokens=3)
    assert seen and not any(seen)
    assert [m.training for m in model.modules()] == before

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(model, "decode", broken)
    with pytest.raises(RuntimeError, match="boom"):
        decode(method, model, None, None, max_new_tokens=3)
    assert [m.training for m in model.modules()] == before


def test_decoding_needs_no_grad():
    model = tiny_model("encoder_decoder")
    src, _ = inputs("encoder_decoder")
    for method in METHODS:
        result = decode(method, model, src, None, max_new_tokens=3)
        assert not result.scores.requires_grad


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda m, s: mt.beam_search(m, s, beam_size=0), "beam_size must be an integer >= 1"),
        (lambda m, s: mt.greedy_decode(m, s, max_new_tokens=0), "max_new_tokens.*got 0"),
        (lambda m, s: mt.beam_search(m, s, max_new_tokens=-3), "max_new_tokens.*got -3"),
        (lambda m, s: mt.sample(m, s, top_p=0.0), r"top_p must be in \(0, 1\].*got 0.0"),
        (lambda m, s: mt.sample(m, s, top_p=1.5), r"top_p.*got 1.5"),
        (lambda m, s: mt.sample(m, s, top_k=0), "top_k.*got 0"),
        (lambda m, s: mt.sample(m, s, temperature=0), "greedy_decode"),
        (lambda m, s: mt.sample(m, s, temperature=-1.0), "temperature.*got -1.0"),
        (lambda m, s: mt.beam_search(m, s, beam_size=2, num_return_sequences=3),
         "num_return_sequences=3 must be <= beam_size=2"),
        (lambda m, s: mt.beam_search(m, s, length_penalty=float("nan")), "length_penalty"),
        (lambda m, s: mt.greedy_decode(m, None), "needs src"),
        (lambda m, s: mt.greedy_decode(m, s[0]), r"shape \(batch, length\)"),
        (lambda m, s: mt.greedy_decode(m, s.float()), "integer token ids"),
        (lambda m, s: mt.greedy_decode(m, s, batch_size=5), "batch sizes disagree"),
    ],
)
def test_bad_input_encoder_decoder(call, match):
    model = tiny_model("encoder_decoder")
    src, _ = inputs("encoder_decoder")
    with pytest.raises(ValueError, match=match):
        call(model, src)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"src": torch.tensor([[4, 5]])}, "decoder-only model takes no src"),
        ({"prompt": torch.tensor([[PAD, BOS, 5]])}, "right-padded"),
        ({"prompt": torch.tensor([[BOS, 5], [PAD, PAD]])}, "row 1 holds only padding"),
        ({"prompt": torch.full((1, 40), 5)}, "prompt length 40 exceeds the model's max_len=32"),
        ({"batch_size": 0}, "batch_size.*got 0"),
    ],
)
@pytest.mark.parametrize("method", METHODS)
def test_bad_input_decoder_only(method, kwargs, match):
    model = tiny_model("decoder_only")
    kwargs = dict(kwargs)
    src, prompt = kwargs.pop("src", None), kwargs.pop("prompt", None)
    with pytest.raises(ValueError, match=match):
        decode(method, model, src, prompt, **kwargs)


def test_texts_through_a_tokenizer():
    class Letters:
        def decode(self, ids):
            return "".join(chr(ord("a") + i) for i in ids)

    result = mt.greedy_decode(counting_model(last=7), prompt=torch.tensor([[BOS, 4], [BOS, 6]]))
    assert result.texts(Letters()) == ["fgh", "h"]
    assert mt.strip_special(torch.tensor([BOS, 5, 6, EOS, 7])) == [5, 6]
