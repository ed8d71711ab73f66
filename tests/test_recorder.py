"""The attention recorder: caches from one forward pass, the history over training, and the
attention over generated text with its step-by-step playback. Tiny untrained CPU models."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import minitransformer as mt
from minitransformer.history import AttentionHistory
from minitransformer.playback import GenerationPlayback, record_generation
from minitransformer.recorder import AttentionCache, default_labels, eval_mode, record

VOCAB = 14
LAYERS = {"encoder": 2, "decoder": 3}


def make_model(arch: str = "encoder_decoder", seed: int = 0, **overrides) -> mt.Transformer:
    torch.manual_seed(seed)
    cfg = mt.ModelConfig.tiny(vocab_size=VOCAB, arch=arch, n_encoder_layers=LAYERS["encoder"],
                              n_decoder_layers=LAYERS["decoder"], d_model=32, n_heads=4, d_ff=64,
                              **overrides)
    return mt.build_model(cfg)


# src rows end with EOS (2) and are padded with 0; tgt rows start with BOS (1).
SRC = torch.tensor([[5, 6, 7, 8, 2], [9, 10, 2, 0, 0], [4, 2, 0, 0, 0]])
TGT = torch.tensor([[1, 8, 7, 6, 5], [1, 10, 9, 0, 0], [1, 4, 0, 0, 0]])
SRC_LEN, TGT_LEN = [5, 3, 2], [5, 3, 2]


@pytest.fixture(scope="module")
def seq2seq():
    return make_model("encoder_decoder")


@pytest.fixture(scope="module")
def lm():
    return make_model("decoder_only")


@pytest.fixture(scope="module")
def cache(seq2seq):
    return record(seq2seq, SRC, TGT)


# ---- record() --------------------------------------------------------------------------------
def test_keys_and_shapes_encoder_decoder(cache):
    b, s, t = SRC.shape[0], SRC.shape[1], TGT.shape[1]
    expected = [("encoder", i, "self") for i in range(2)]
    for i in range(3):
        expected += [("decoder", i, "self"), ("decoder", i, "cross")]
    assert cache.keys() == expected
    assert cache.n_heads == 4 and cache.batch_size == 3
    assert cache.n_layers("encoder") == 2 and cache.n_layers("decoder", "cross") == 3
    for key in cache.keys():
        w = cache[key]
        assert w.device.type == "cpu" and w.dtype == torch.float32 and not w.requires_grad
        assert w.grad_fn is None
    assert cache[("encoder", 0, "self")].shape == (b, 4, s, s)
    assert cache[("decoder", 2, "self")].shape == (b, 4, t, t)
    assert cache[("decoder", 1, "cross")].shape == (b, 4, t, s)


def test_keys_decoder_only(lm):
    c = record(lm, None, TGT)
    assert c.keys() == [("decoder", i, "self") for i in range(3)]
    assert not c.is_encoder_decoder and c.src_tokens is None
    assert c[("decoder", 0, "self")].shape == (3, 4, 5, 5)


def test_cache_holds_the_models_own_weights(seq2seq, cache):
    seq2seq.eval()
    with torch.no_grad():
        out = seq2seq(SRC, TGT, output_attentions=True)
    for layer in range(3):
        assert torch.equal(cache[("decoder", layer, "cross")], out.cross_attentions[layer])
        assert torch.equal(cache[("decoder", layer, "self")], out.decoder_attentions[layer])
    assert torch.equal(cache[("encoder", 1, "self")], out.encoder_attentions[1])


def test_record_restores_train_mode_and_mixed_modes(seq2seq):
    seq2seq.train()
    seq2seq.decoder_layers[0].eval()  # a mixed state must come back as it was
    before = {name: m.training for name, m in seq2seq.named_modules()}
    record(seq2seq, SRC, TGT)
    assert {name: m.training for name, m in seq2seq.named_modules()} == before
    seq2seq.eval()
    record(seq2seq, SRC, TGT)
    assert not any(m.training for m in seq2seq.modules())


def test_record_restores_mode_when_forward_raises(seq2seq):
    seq2seq.train()
    bad = SRC.clone()
    bad[0, 0] = VOCAB + 5  # outside the vocabulary
    with pytest.raises(IndexError, match="outside the vocabulary"):
        record(seq2seq, bad, TGT)
    assert all(m.training for m in seq2seq.modules())
    assert torch.is_grad_enabled()


def test_eval_mode_context_manager_restores_on_exception(seq2seq):
    seq2seq.train()
    with pytest.raises(RuntimeError, match="boom"):
        with eval_mode(seq2seq):
            assert not seq2seq.training and not torch.is_grad_enabled()
            raise RuntimeError("boom")
    assert seq2seq.training and torch.is_grad_enabled()


def test_record_leaves_no_hooks(seq2seq):
    record(seq2seq, SRC, TGT)
    for module in seq2seq.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks


# ---- per-example views ---------------------------------------------------------------------------
def test_example_trims_padding(cache):
    for b in range(3):
        one = cache.example(b)
        assert one.batch_size == 1
        s, t = SRC_LEN[b], TGT_LEN[b]
        assert one[("encoder", 0, "self")].shape == (1, 4, s, s)
        assert one[("decoder", 0, "self")].shape == (1, 4, t, t)
        assert one[("decoder", 2, "cross")].shape == (1, 4, t, s)
        assert one.src_tokens[0] == cache.src_tokens[b][:s]
        key = ("decoder", 2, "cross")
        assert torch.equal(one[key][0], cache.weights(key, b))
        # the trimmed rows still sum to 1: only padding (weight 0) was cut
        sums = one[("decoder", 1, "cross")].sum(-1)
        assert torch.allclose(sums, torch.ones_like(sums), atol=1e-5)


def test_query_and_key_tokens(cache):
    key = ("decoder", 0, "cross")
    assert cache.query_tokens(key, 1) == ["<bos>", "10", "9"]
    assert cache.key_tokens(key, 1) == ["9", "10", "<eos>"]
    assert cache.key_tokens(("decoder", 0, "self"), 2) == ["<bos>", "4"]
    assert len(cache.src_tokens[1]) == 5 and cache.src_tokens[1][-1] == "<pad>"


def test_stacked_and_weights(cache):
    stacked = cache.stacked("decoder", "cross", example=1)
    assert stacked.shape == (3, 4, 3, 3)
    assert torch.equal(stacked[2, 1], cache.weights(("decoder", 2, "cross"), 1, head=1))
    assert cache.stacked("encoder", "self").shape == (2, 4, 5, 5)


def test_to_bertviz_layout(cache, lm):
    kw = cache.to_bertviz(example=1)
    assert set(kw) == {"encoder_attention", "decoder_attention", "cross_attention",
                       "encoder_tokens", "decoder_tokens"}
    assert isinstance(kw["cross_attention"], tuple) and len(kw["cross_attention"]) == 3
    assert kw["encoder_attention"][0].shape == (1, 4, 3, 3)
    assert kw["cross_attention"][0].shape == (1, 4, 3, 3)
    assert kw["decoder_tokens"] == ["<bos>", "10", "9"]
    kw = record(lm, None, TGT).to_bertviz(example=2)
    assert set(kw) == {"attention", "tokens"}
    assert kw["tokens"] == ["<bos>", "4"] and kw["attention"][0].shape == (1, 4, 2, 2)


def test_truncate_target(cache):
    cut = cache.truncate_target(2)
    assert cut[("decoder", 1, "self")].shape == (3, 4, 2, 2)
    assert cut[("decoder", 1, "cross")].shape == (3, 4, 2, 5)
    assert torch.equal(cut[("encoder", 0, "self")], cache[("encoder", 0, "self")])
    assert torch.equal(cut[("decoder", 1, "self")], cache[("decoder", 1, "self")][:, :, :2, :2])
    with pytest.raises(ValueError, match="5 target positions"):
        cache.truncate_target(6)


def test_half_storage(cache):
    half = cache.half()
    assert half.nbytes * 2 == cache.nbytes
    assert half[("decoder", 0, "cross")].dtype == torch.float32  # reads are float32
    assert torch.allclose(half[("decoder", 0, "cross")], cache[("decoder", 0, "cross")],
                          atol=1e-3)


# ---- token labels ------------------------------------------------------------------------------
class FakeTokenizer:
    def tokens_to_strings(self, ids):
        return [f"t{i}" for i in ids]


def test_token_labels_from_tokenizer_and_lists(seq2seq):
    c = record(seq2seq, SRC, TGT, src_tokens=FakeTokenizer(), tgt_tokens=FakeTokenizer())
    assert c.src_tokens[1] == ["t9", "t10", "t2", "t0", "t0"]
    assert c.key_tokens(("encoder", 0, "self"), 1) == ["t9", "t10", "t2"]
    # unpadded lists (one string per real token) are accepted and padded with <pad>
    src_tokens = [list("abcd") + ["<eos>"], ["x", "y", "<eos>"], ["z", "<eos>"]]
    c = record(seq2seq, SRC, TGT, src_tokens=src_tokens)
    assert c.src_tokens[2] == ["z", "<eos>", "<pad>", "<pad>", "<pad>"]
    # one plain list for a batch of one
    c = record(seq2seq, SRC[:1], TGT[:1], src_tokens=list("abcd") + ["<eos>"])
    assert c.key_tokens(("decoder", 0, "cross")) == ["a", "b", "c", "d", "<eos>"]


def test_mismatched_token_lists_are_refused(seq2seq):
    with pytest.raises(ValueError, match=r"src_tokens\[1\] has 4 strings but src\[1\] has 5 "
                                         r"positions \(3 of them not padding\)"):
        record(seq2seq, SRC, TGT, src_tokens=[["a"] * 5, ["a"] * 4, ["a"] * 2])
    with pytest.raises(ValueError, match="2 examples but tgt has batch size 3"):
        record(seq2seq, SRC, TGT, tgt_tokens=[["a"] * 5, ["a"] * 5])
    with pytest.raises(TypeError, match="not one string"):
        record(seq2seq, SRC, TGT, tgt_tokens="hello")


# ---- bad lookups -------------------------------------------------------------------------------
def test_missing_cross_attention_in_decoder_only_cache(lm):
    c = record(lm, None, TGT)
    with pytest.raises(KeyError) as info:
        c[("decoder", 0, "cross")]
    message = str(info.value)
    assert "no ('decoder', 0, 'cross') in this cache" in message
    assert "('decoder', 0, 'self')" in message and "decoder-only model has no cross" in message
    with pytest.raises(KeyError, match="no cross-attention"):
        c.stacked("decoder", "cross")


def test_out_of_range_layer_head_example(cache):
    with pytest.raises(KeyError, match=r"layers 0\.\.2"):
        cache[("decoder", 3, "cross")]
    with pytest.raises(IndexError, match=r"4 heads \(0\.\.3\)"):
        cache.weights(("decoder", 0, "cross"), 0, head=4)
    with pytest.raises(IndexError, match=r"3 examples \(0\.\.2\)"):
        cache.example(3)
    with pytest.raises(KeyError, match="not an attention key"):
        cache[("encoder", 0, "cross")]


def test_cache_constructor_checks_shapes():
    w = torch.full((1, 2, 3, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"expected \(B, H, Tq, Tk\) = \(1, 2, 4, 4\)"):
        AttentionCache({("decoder", 0, "self"): w}, None, [["a", "b", "c", "d"]])


# ---- history over training ---------------------------------------------------------------
class DummyTrainer:
    """What AttentionHistory uses of mt.Trainer: model, state.step, history, callbacks."""

    def __init__(self, model):
        self.model = model
        self.state = SimpleNamespace(step=0)
        self.history = []
        self.callbacks = []

    def add_callback(self, cb):
        self.callbacks.append(cb)

    def run(self, n):
        for _ in range(n):
            self.state.step += 1
            metrics = {"step": self.state.step, "loss": 1.0 / self.state.step}
            self.history.append(metrics)
            for cb in self.callbacks:
                cb.on_step_end(self, metrics)
        for cb in self.callbacks:
            cb.on_run_end(self)


def test_history_stays_within_budget_over_a_long_run(seq2seq):
    """2,000 steps, a snapshot every 10: 200 captures into a 16-snapshot budget."""
    history = AttentionHistory(SRC[:2], TGT[:2], every=10, max_snapshots=16)
    trainer = DummyTrainer(seq2seq)
    history.attach(trainer)  # captures step 0
    peak = 0
    for _ in range(20):
        trainer.run(100)
        peak = max(peak, history.nbytes)
        assert len(history) <= 16
    assert peak <= history.budget_bytes
    steps = history.steps
    assert steps[0] == 0 and steps[-1] == 2000 and 8 <= len(steps) <= 16
    gaps = [b - a for a, b in zip(steps, steps[1:], strict=False)]
    # evenly spaced (the spacing doubles when full); only the gap to the latest may be shorter
    assert len(set(gaps[:-1])) == 1 and 0 < gaps[-1] <= gaps[0], gaps
    assert history.snapshots[-1].loss == pytest.approx(1 / 2000)
    assert history.snapshots[0].cache.dtype == torch.float16
    assert history.nbytes == len(steps) * history.snapshots[0].cache.nbytes
    summary = history.summary()
    assert summary.startswith(f"{len(steps)} snapshots, steps 0..2000, ")
    assert "budget (float16)" in summary


def test_history_byte_budget_and_final_step(seq2seq):
    one = record(seq2seq, SRC, TGT).half().nbytes
    history = AttentionHistory(SRC, TGT, every=5, max_snapshots=1000, max_bytes=5 * one)
    trainer = DummyTrainer(seq2seq)
    history.attach(trainer)
    trainer.run(103)  # not a multiple of `every`: on_run_end records step 103
    assert 3 <= len(history) <= 5 and history.nbytes <= history.budget_bytes
    assert history.steps[0] == 0 and history.steps[-1] == 103


def test_history_snapshot_is_the_probe_in_eval_mode(seq2seq):
    seq2seq.train()
    history = AttentionHistory(SRC, TGT, every=1, dtype=torch.float32)
    snap = history.capture(seq2seq, step=7, loss=0.5)
    assert seq2seq.training  # mode restored
    expected = record(seq2seq, SRC, TGT)
    assert torch.equal(snap.cache[("decoder", 1, "cross")], expected[("decoder", 1, "cross")])
    assert history.at_step(6).step == 7 and history.over_time(("decoder", 0, "self")).shape[0] == 1


def test_history_with_the_real_trainer():
    task = mt.get_task("copy", seed=0, n_train=64, n_valid=8, n_test=8, max_len=5)
    torch.manual_seed(0)
    model = mt.build_model(mt.ModelConfig.tiny(vocab_size=task.tgt_tokenizer.vocab_size,
                                               d_model=32, d_ff=64))
    trainer = mt.Trainer(model, task, mt.TrainConfig.classroom(batch_size=16, device="cpu",
                                                               progress=False))
    history = AttentionHistory.from_task(task, n=3, every=4).attach(trainer)
    trainer.run(10)
    assert history.steps == [0, 4, 8, 10]
    assert [s.loss for s in history.snapshots[1:]] == [
        trainer.history[i]["loss"] for i in (3, 7, 9)]
    first, last = history[0].cache, history[-1].cache
    assert first.src_tokens[0][-1] == "<eos>" and first.tgt_tokens[0][0] == "<bos>"
    assert not torch.equal(first[("decoder", 0, "cross")], last[("decoder", 0, "cross")])


def test_history_bad_input(seq2seq):
    empty = AttentionHistory(SRC, TGT)
    for call in (lambda: empty[0], lambda: empty.at_step(3),
                 lambda: empty.over_time(("decoder", 0, "self"))):
        with pytest.raises(ValueError, match="empty"):
            call()
    assert empty.summary().startswith("0 snapshots")
    with pytest.raises(ValueError, match="every must be an integer >= 1"):
        AttentionHistory(SRC, TGT, every=0)
    with pytest.raises(ValueError, match="max_snapshots must be an integer >= 2"):
        AttentionHistory(SRC, TGT, max_snapshots=1)
    tiny_budget = AttentionHistory(SRC, TGT, max_bytes=1000)
    with pytest.raises(ValueError, match="cannot hold the two a timeline needs"):
        tiny_budget.capture(seq2seq, 0)
    history = AttentionHistory(SRC, TGT)
    history.capture(seq2seq, 10)
    with pytest.raises(ValueError, match="before the latest snapshot"):
        history.capture(seq2seq, 5)
    with pytest.raises(IndexError, match=r"holds 1 \(0\.\.0\)"):
        history[1]


# ---- attention over generated text -------------------------------------------------------------
def forbid_padding(model: mt.Transformer) -> mt.Transformer:
    """Make the pad id lose every argmax (untrained models would otherwise emit it now and
    then): an untied output projection, same weights, with a large negative bias on pad."""
    weight = model.output_proj.weight.detach().clone()
    proj = torch.nn.Linear(weight.size(1), weight.size(0))
    with torch.no_grad():
        proj.weight.copy_(weight)
        proj.bias.zero_()
        proj.bias[0] = -1e4
    model.output_proj = proj
    return model


def step_by_step(model, src, prompt, n_steps, eos_id=2):
    """Decode greedily one token at a time, each step a full forward pass with attention;
    returns the tokens and, per step, each key's attention row of the newest position."""
    seq = prompt.clone()
    tokens, rows = [], []
    model.eval()
    with torch.no_grad():
        for _ in range(n_steps):
            out = model(src, seq, output_attentions=True)
            nxt = int(out.logits[0, -1].argmax())
            row = {("decoder", i, "self"): w[0, :, -1]
                   for i, w in enumerate(out.decoder_attentions)}
            if out.cross_attentions is not None:
                row.update({("decoder", i, "cross"): w[0, :, -1]
                            for i, w in enumerate(out.cross_attentions)})
            tokens.append(nxt)
            rows.append(row)
            seq = torch.cat([seq, torch.tensor([[nxt]])], dim=1)
            if nxt == eos_id:
                break
    return tokens, rows


@pytest.mark.parametrize("arch", ["encoder_decoder", "decoder_only"])
@pytest.mark.parametrize("pos_encoding", ["sinusoidal", "rope"])
def test_playback_matches_step_by_step_decoding(arch, pos_encoding):
    """Rows of the one teacher-forced pass == the attention of decoding one token at a time
    (atol 1e-5: the same arithmetic on prefixes of different lengths)."""
    model = forbid_padding(make_model(arch, seed=3, pos_encoding=pos_encoding, dropout=0.0))
    n = 6
    if arch == "encoder_decoder":
        src, prompt, start = SRC[:1], torch.tensor([[1]]), torch.tensor([[1]])
    else:
        src, prompt = None, torch.tensor([[1, 5, 6]])
        start = prompt
    tokens, rows = step_by_step(model, src, start, n)
    generated = torch.tensor([tokens])
    cache = record_generation(model, src, prompt=None if src is not None else prompt,
                              generated=generated)
    playback = GenerationPlayback(cache)
    assert len(playback) == len(tokens)
    assert playback.tokens == [str(t) if t > 3 else ["<pad>", "<bos>", "<eos>", "<unk>"][t]
                               for t in tokens]
    for t in range(1, len(tokens) + 1):
        for key, expected in rows[t - 1].items():
            got = playback.row(key, t)
            assert got.shape == expected.shape
            assert torch.allclose(got, expected, atol=1e-5), (key, t)
        step_cache = playback.step(t)
        n_rows = prompt.size(1) - 1 + t if src is None else t
        assert step_cache[("decoder", 0, "self")].shape[-2:] == (n_rows, n_rows)


def test_record_generation_labels_and_lengths():
    model = make_model("encoder_decoder", seed=1)
    generated = torch.tensor([[7, 8, 2, 0], [9, 10, 11, 12]])  # second never reached EOS
    cache = record_generation(model, SRC[:2], generated=generated, src_tokenizer=FakeTokenizer(),
                              tgt_tokenizer=FakeTokenizer())
    assert cache.generated_lengths == [3, 4]
    assert cache.tgt_tokens[0][:3] == ["t1", "t7", "t8"]  # decoder input: BOS + generated
    assert cache.generated_tokens(0) == ["t7", "t8", "t2"]
    assert cache.generated_tokens(1) == ["t9", "t10", "t11", "t12"]
    assert cache.query_tokens(("decoder", 0, "cross"), 0) == ["t1", "t7", "t8"]
    playback = cache.playback(1)
    assert [tok for _, tok, _ in playback] == ["t9", "t10", "t11", "t12"]
    with pytest.raises(IndexError, match=r"4 steps \(1\.\.4\)"):
        playback.step(5)


def test_record_generation_decodes_with_greedy_by_default():
    decoding = pytest.importorskip("minitransformer.decoding")
    model = forbid_padding(make_model("encoder_decoder", seed=2, dropout=0.0))
    result = decoding.greedy_decode(model, SRC[:2], max_new_tokens=5)
    cache = record_generation(model, SRC[:2], max_new_tokens=5)
    for b in range(2):
        n = cache.generated_lengths[b]
        assert cache.generated_tokens(b) == [
            s for s in default_labels(result.tokens[b, :n].tolist())]
    lm = forbid_padding(make_model("decoder_only", seed=2, dropout=0.0))
    prompt = torch.tensor([[1, 5, 6], [1, 7, 8]])
    cache = record_generation(lm, prompt=prompt, max_new_tokens=4)
    assert cache.prompt_length == 3 and all(1 <= n <= 4 for n in cache.generated_lengths)
    assert cache.tgt_tokens[0][:3] == ["<bos>", "5", "6"]


def test_record_generation_bad_input(lm, seq2seq):
    with pytest.raises(ValueError, match="needs src"):
        record_generation(seq2seq, None, generated=torch.tensor([[5, 2]]))
    with pytest.raises(ValueError, match="needs prompt"):
        record_generation(lm, None, generated=torch.tensor([[5, 2]]))
    with pytest.raises(ValueError, match="takes no src"):
        record_generation(lm, SRC, generated=torch.tensor([[5, 2]]))
    with pytest.raises(ValueError, match=r"generated must have shape \(B=3"):
        record_generation(seq2seq, SRC, generated=torch.tensor([[5, 2]]))
    with pytest.raises(TypeError, match="from record_generation"):
        GenerationPlayback(record(seq2seq, SRC, TGT))


def test_default_labels_are_the_shared_specials():
    assert default_labels([0, 1, 2, 3, 4]) == ["<pad>", "<bos>", "<eos>", "<unk>", "4"]
