"""Invariants of the model core, parametrised over architecture x positional encoding x path.

The "fused" path is a forward call with ``output_attentions=False`` (scaled_dot_product_attention);
the "explicit" path is ``output_attentions=True`` (softmax weights returned).
Every check runs on a tiny CPU model, in eval mode unless stated otherwise.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import minitransformer as mt

ARCHS = ("encoder_decoder", "decoder_only")
POS_ENCODINGS = ("sinusoidal", "learned", "rope", "none")
PATHS = ("fused", "explicit")

PAD, BOS, EOS = 0, 1, 2
FIRST_ORDINARY_ID = 4  # ids 0..3 are <pad>, <bos>, <eos>, <unk>
SRC_VOCAB, TGT_VOCAB = 11, 13  # different on purpose: a mix-up shows in the logits' shape
D_MODEL, N_HEADS, N_LAYERS = 32, 4, 2
BATCH, SRC_LEN, TGT_LEN = 3, 7, 6  # all different on purpose
ATOL = 1e-5


def tiny_config(arch: str, pos: str = "sinusoidal", **overrides) -> mt.ModelConfig:
    """A tiny config with every field spelled out; ``overrides`` replace single fields."""
    fields = dict(
        arch=arch,
        src_vocab_size=SRC_VOCAB,
        tgt_vocab_size=TGT_VOCAB,
        d_model=D_MODEL,
        n_heads=N_HEADS,
        n_encoder_layers=N_LAYERS,
        n_decoder_layers=N_LAYERS,
        d_ff=64,
        dropout=0.1,  # non-zero so that eval mode has to switch dropout off on both paths
        max_len=32,
        pad_id=PAD,
        pos_encoding=pos,
        norm_first=False,
        tie_embeddings=True,
    )
    fields.update(overrides)
    return mt.ModelConfig(**fields)


def tiny_model(arch: str, pos: str = "sinusoidal", seed: int = 0, **overrides) -> torch.nn.Module:
    """A freshly initialised tiny model in eval mode."""
    torch.manual_seed(seed)
    return mt.build_model(tiny_config(arch, pos, **overrides)).eval()


def make_inputs(
    cfg: mt.ModelConfig, *, padded: bool = True, seed: int = 0
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(src, tgt): src (B, S) or None for decoder_only, tgt (B, T) starting with <bos>.

    With ``padded``, rows 1 and 2 end in pad ids (src: 2 and 3 pads, tgt: 1 and 2 pads);
    row 0 has no padding.
    """
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(FIRST_ORDINARY_ID, cfg.src_vocab_size, (BATCH, SRC_LEN), generator=g)
    tgt = torch.randint(FIRST_ORDINARY_ID, cfg.tgt_vocab_size, (BATCH, TGT_LEN), generator=g)
    tgt[:, 0] = BOS
    if padded:
        src[1, -2:] = PAD
        src[2, -3:] = PAD
        tgt[1, -1:] = PAD
        tgt[2, -2:] = PAD
    return (src if cfg.arch == "encoder_decoder" else None), tgt


def forward(model, src, tgt, path: str):
    return model(src, tgt, output_attentions=(path == "explicit"))



# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("pos", POS_ENCODINGS)
@pytest.mark.parametrize("arch", ARCHS)
def test_output_shapes(arch: str, pos: str, path: str) -> None:
    """logits (B, T, V_tgt); one attention tensor per layer, (B, H, Tq, Tk); None where absent."""
    cfg = tiny_config(arch, pos)
    model = tiny_model(arch, pos)
    src, tgt = make_inputs(cfg)
    with torch.no_grad():
        out = forward(model, src, tgt, path)

    assert out.logits.shape == (BATCH, TGT_LEN, TGT_VOCAB)
    assert torch.isfinite(out.logits).all()

    if path == "fused":
        assert out.encoder_attentions is None
        assert out.decoder_attentions is None
        assert out.cross_attentions is None
        return

    dec = out.decoder_attentions
    assert isinstance(dec, tuple) and len(dec) == N_LAYERS
    assert all(a.shape == (BATCH, N_HEADS, TGT_LEN, TGT_LEN) for a in dec)
    if arch == "decoder_only":
        assert out.encoder_attentions is None
        assert out.cross_attentions is None
    else:
        enc, cross = out.encoder_attentions, out.cross_attentions
        assert isinstance(enc, tuple) and len(enc) == N_LAYERS
        assert isinstance(cross, tuple) and len(cross) == N_LAYERS
        assert all(a.shape == (BATCH, N_HEADS, SRC_LEN, SRC_LEN) for a in enc)
        assert all(a.shape == (BATCH, N_HEADS, TGT_LEN, SRC_LEN) for a in cross)


def test_layer_counts_follow_the_config() -> None:
    """Encoder and decoder depths are independent: 1 encoder layer, 3 decoder layers."""
    cfg = tiny_config("encoder_decoder", n_encoder_layers=1, n_decoder_layers=3)
    torch.manual_seed(0)
    model = mt.build_model(cfg).eval()
    src, tgt = make_inputs(cfg)
    with torch.no_grad():
        out = model(src, tgt, output_attentions=True)
    assert len(out.encoder_attentions) == 1
    assert len(out.decoder_attentions) == 3
    assert len(out.cross_attentions) == 3


# --------------------------------------------------------------------------- attention weights


def all_attentions(out) -> dict[str, tuple[torch.Tensor, ...]]:
    kinds = {
        "encoder": out.encoder_attentions,
        "decoder": out.decoder_attentions,
        "cross": out.cross_attentions,
    }
    return {kind: attn for kind, attn in kinds.items() if attn is not None}


@pytest.mark.parametrize("pos", POS_ENCODINGS)
@pytest.mark.parametrize("arch", ARCHS)
def test_attention_rows_sum_to_one(arch: str, pos: str) -> None:
    """Every attention row (including padded query rows) sums to 1, tolerance 1e-5."""
    cfg = tiny_config(arch, pos)
    model = tiny_model(arch, pos)
    src, tgt = make_inputs(cfg)
    with torch.no_grad():
        out = model(src, tgt, output_attentions=True)
    for kind, layers in all_attentions(out).items():
        for layer, weights in enumerate(layers):
            assert (weights >= 0).all(), f"{kind} layer {layer}: negative weight"
            row_sums = weights.sum(dim=-1)  # (B, H, Tq)
            torch.testing.assert_close(
                row_sums, torch.ones_like(row_sums), atol=ATOL, rtol=0,
                msg=lambda m, kind=kind, layer=layer: f"{kind} layer {layer}: {m}",
            )


@pytest.mark.parametrize("pos", POS_ENCODINGS)
@pytest.mark.parametrize("arch", ARCHS)
def test_decoder_self_attention_is_zero_above_the_diagonal(arch: str, pos: str) -> None:
    """Decoder self-attention entries strictly above the diagonal are exactly 0."""
    cfg = tiny_config(arch, pos)
    model = tiny_model(arch, pos)
    src, tgt = make_inputs(cfg, padded=False)
    with torch.no_grad():
        out = model(src, tgt, output_attentions=True)
    for layer, weights in enumerate(out.decoder_attentions):
        above = torch.triu(weights, diagonal=1)  # (B, H, T, T)
        assert (above == 0).all(), f"decoder layer {layer} attends to the future"
        # and the diagonal itself is allowed: a token may see itself
        assert (torch.diagonal(weights, dim1=-2, dim2=-1) > 0).all()


@pytest.mark.parametrize("pos", POS_ENCODINGS)
@pytest.mark.parametrize("arch", ARCHS)
def test_padded_key_columns_are_exactly_zero(arch: str, pos: str) -> None:
    """Key columns holding the pad id get weight exactly 0 (encoder self, cross, decoder self)."""
    cfg = tiny_config(arch, pos)
    model = tiny_model(arch, pos)
    src, tgt = make_inputs(cfg)
    with torch.no_grad():
        out = model(src, tgt, output_attentions=True)

    key_ids = {"decoder": tgt}
    if arch == "encoder_decoder":
        key_ids["encoder"] = src
        key_ids["cross"] = src
    assert set(all_attentions(out)) == set(key_ids)
    for kind, layers in all_attentions(out).items():
        is_pad_key = (key_ids[kind] == PAD)[:, None, None, :]  # (B, 1, 1, Tk)
        assert is_pad_key.any(), "the test batch must contain padding"
        for layer, weights in enumerate(layers):
            leaked = weights.masked_select(is_pad_key.expand_as(weights))
            assert (leaked == 0).all(), (
                f"{kind} layer {layer}: padded key columns get weight up to {leaked.abs().max()}"
            )


@pytest.mark.parametrize("arch", ARCHS)
def test_attention_weights_are_taken_before_dropout(arch: str) -> None:
    """With attention dropout 0.5 in train mode the returned weights still sum to 1 per row."""
    cfg = tiny_config(arch, "sinusoidal", dropout=0.0, attention_dropout=0.5)
    torch.manual_seed(0)
    model = mt.build_model(cfg).train()
    src, tgt = make_inputs(cfg)
    with torch.no_grad():
        out = model(src, tgt, output_attentions=True)
    for kind, layers in all_attentions(out).items():
        for layer, weights in enumerate(layers):
            row_sums = weights.sum(dim=-1)
            assert torch.allclose(row_sums, torch.ones_like(row_sums), atol=ATOL, rtol=0), (
                f"{kind} layer {layer}: rows sum to {row_sums.min():.4f}..{row_sums.max():.4f}; "
                "weights look like they were returned after dropout"
            )
    # dropout is really active in train mode: two calls differ
    with torch.no_grad():
        again = model(src, tgt, output_attentions=True)
    assert not torch.allclose(out.logits, again.logits)


@pytest.mark.parametrize("arch", ARCHS)
def test_dropout_sits_where_the_paper_puts_it(arch: str) -> None:
    """By default (as in the paper) attention weights are not dropped: with dropout only on
    the weights, training-mode passes differ only when attention_dropout > 0."""
    for attention_dropout, differ in ((0.0, False), (0.3, True)):
        cfg = tiny_config(arch, "sinusoidal", dropout=0.0, attention_dropout=attention_dropout)
        model = mt.build_model(cfg).train()
        src, tgt = make_inputs(cfg)
        with torch.no_grad():
            first, second = (model(src, tgt).logits for _ in range(2))
        assert torch.equal(first, second) != differ
    assert mt.ModelConfig().attention_dropout == 0.0


def test_attention_weights_are_fresh_tensors_per_call() -> None:
    """A second forward call does not overwrite the weights returned by the first one."""
    cfg = tiny_config("encoder_decoder")
    model = tiny_model("encoder_decoder")
    src, tgt = make_inputs(cfg)
    other_src, other_tgt = make_inputs(cfg, seed=1)
    with torch.no_grad():
        first = model(src, tgt, output_attentions=True)
        kept = [a.clone() for a in first.decoder_attentions]
        model(other_src, other_tgt, output_attentions=True)
    for before, after in zip(kept, first.decoder_attentions, strict=True):
        assert torch.equal(before, after)


# --------------------------------------------------------------------------- causality and paths


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("pos", POS_ENCODINGS)
@pytest.mark.parametrize("arch", ARCHS)
def test_future_tokens_never_change_earlier_logits(arch: str, pos: str, path: str) -> None:
    """Replacing tgt[:, k:] leaves logits[:, :k] unchanged (eval mode, atol 1e-5) for every k."""
    cfg = tiny_config(arch, pos)
    model = tiny_model(arch, pos)
    src, tgt = make_inputs(cfg, padded=False)
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        reference = forward(model, src, tgt, path).logits  # (B, T, V)
        for k in range(1, TGT_LEN):
            changed = tgt.clone()
            new = torch.randint(FIRST_ORDINARY_ID, TGT_VOCAB, changed[:, k:].shape, generator=g)
            changed[:, k:] = torch.where(new == tgt[:, k:], FIRST_ORDINARY_ID + (new + 1) % 9, new)
            logits = forward(model, src, changed, path).logits
            torch.testing.assert_close(
                logits[:, :k], reference[:, :k], atol=ATOL, rtol=0,
                msg=lambda m, k=k: f"changing tokens from position {k} on leaked backwards: {m}",
            )
            # the change is visible where it should be (the test would be vacuous otherwise)
            assert not torch.allclose(logits[:, k:], reference[:, k:], atol=ATOL)


@pytest.mark.parametrize("pos", POS_ENCODINGS)
@pytest.mark.parametrize("arch", ARCHS)
def test_fused_and_explicit_paths_give_the_same_logits(arch: str, pos: str) -> None:
    """Eval mode, padded batch, dropout=0.1 in the config: logits agree within atol 1e-5."""
    cfg = tiny_config(arch, pos)
    model = tiny_model(arch, pos)
    src, tgt = make_inputs(cfg)
    with torch.no_grad():
        fused = model(src, tgt, output_attentions=False).logits
        explicit = model(src, tgt, output_attentions=True).logits
    torch.testing.assert_close(fused, explicit, atol=ATOL, rtol=0)


@pytest.mark.parametrize("pos", POS_ENCODINGS)
@pytest.mark.parametrize("arch", ARCHS)
def test_padding_does_not_change_the_logits_of_real_tokens(arch: str, pos: str) -> None:
    """Row 1 alone (no pads) and row 1 padded to a longer batch give the same logits (1e-5)."""
    cfg = tiny_config(arch, pos)
    model = tiny_model(arch, pos)
    src, tgt = make_inputs(cfg)
    n_src, n_tgt = SRC_LEN - 2, TGT_LEN - 1  # row 1 holds 2 src pads and 1 tgt pad
    short_src = None if src is None else src[1:2, :n_src]
    with torch.no_grad():
        padded = model(src, tgt).logits[1, :n_tgt]
        alone = model(short_src, tgt[1:2, :n_tgt]).logits[0]
    torch.testing.assert_close(padded, alone, atol=ATOL, rtol=0)


@pytest.mark.parametrize("pos", POS_ENCODINGS)
@pytest.mark.parametrize("arch", ARCHS)
def test_query_rows_with_nothing_to_attend_to_stay_finite(arch: str, pos: str) -> None:
    """A left-padded tgt row (its first queries see only pads) and an all-pad src row: logits
    finite, both paths agree (1e-5), and every weight row sums to 1 or, with no visible key, 0."""
    cfg = tiny_config(arch, pos)
    model = tiny_model(arch, pos)
    src, tgt = make_inputs(cfg, padded=False)
    tgt[0] = torch.tensor([PAD, PAD, BOS, 5, 6, 7])
    if src is not None:
        src[2] = PAD
    with torch.no_grad():
        fused = model(src, tgt).logits
        out = model(src, tgt, output_attentions=True)
    assert torch.isfinite(fused).all()
    assert torch.isfinite(out.logits).all()
    torch.testing.assert_close(fused, out.logits, atol=ATOL, rtol=0)
    for kind, layers in all_attentions(out).items():
        for weights in layers:
            row_sums = weights.sum(dim=-1)
            near_one = (row_sums - 1).abs() <= ATOL
            assert (near_one | (row_sums == 0)).all(), f"{kind}: row sums {row_sums.unique()}"


# --------------------------------------------------------------------------- pre-norm / post-norm


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("arch", ARCHS)
def test_pre_norm_and_post_norm_both_work(arch: str, norm_first: bool) -> None:
    """Shapes and causality hold for both norm placements (eval, atol 1e-5)."""
    cfg = tiny_config(arch, norm_first=norm_first)
    model = tiny_model(arch, norm_first=norm_first)
    src, tgt = make_inputs(cfg, padded=False)
    changed = tgt.clone()
    changed[:, 3:] = torch.where(tgt[:, 3:] == 5, 6, 5)
    with torch.no_grad():
        out = model(src, tgt, output_attentions=True)
        later = model(src, changed).logits
    assert out.logits.shape == (BATCH, TGT_LEN, TGT_VOCAB)
    assert len(out.decoder_attentions) == N_LAYERS
    torch.testing.assert_close(later[:, :3], out.logits[:, :3], atol=ATOL, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_pre_norm_and_post_norm_differ(arch: str) -> None:
    """Same seed, same input: norm_first=True and False give different logits."""
    cfg = tiny_config(arch)
    src, tgt = make_inputs(cfg)
    logits = {}
    for norm_first in (False, True):
        mt.seed_everything(0)
        model = mt.build_model(tiny_config(arch, norm_first=norm_first)).eval()
        with torch.no_grad():
            logits[norm_first] = model(src, tgt).logits
    assert not torch.allclose(logits[False], logits[True], atol=1e-3)


# --------------------------------------------------------------------------- tied embeddings


def vocab_matrices(model: torch.nn.Module, vocab: int) -> list[torch.Tensor]:
    """Every registered parameter of shape (vocab, d_model), duplicates (shared ones) included."""
    return [
        p for _, p in model.named_parameters(remove_duplicate=False)
        if p.shape == (vocab, D_MODEL)
    ]


def distinct_storages(tensors: list[torch.Tensor]) -> set[int]:
    return {t.data_ptr() for t in tensors}


def test_decoder_only_tied_embeddings_share_one_tensor() -> None:
    """tie_embeddings=True: output projection and token embedding are one tensor."""
    tied = tiny_model("decoder_only", tie_embeddings=True)
    untied = tiny_model("decoder_only", tie_embeddings=False)
    assert len(distinct_storages(vocab_matrices(tied, TGT_VOCAB))) == 1
    assert len(distinct_storages(vocab_matrices(untied, TGT_VOCAB))) == 2
    assert mt.count_parameters(untied) - mt.count_parameters(tied) == TGT_VOCAB * D_MODEL


def test_tied_embedding_is_used_by_the_output_projection() -> None:
    """Changing the (shared) embedding row of token 5 changes the logit of token 5 everywhere."""
    model = tiny_model("decoder_only", tie_embeddings=True)
    cfg = tiny_config("decoder_only")
    _, tgt = make_inputs(cfg, padded=False)
    tgt[:, 1:] = 6  # token 5 never appears in the input, so only the output projection sees it
    matrices = vocab_matrices(model, TGT_VOCAB)
    assert len(distinct_storages(matrices)) == 1
    shared = matrices[0]
    with torch.no_grad():
        before = model(None, tgt).logits
        # not a constant: a LayerNorm output has zero mean, so h . (W[5] + c) == h . W[5]
        shared[5] += torch.randn(D_MODEL, generator=torch.Generator().manual_seed(0))
        after = model(None, tgt).logits
    changed = (after - before).abs() > 1e-6  # (B, T, V)
    assert changed[..., 5].all()
    assert not changed[..., [v for v in range(TGT_VOCAB) if v != 5]].any()


def test_encoder_decoder_tied_embeddings_with_equal_vocabularies() -> None:
    """Equal vocab sizes and tie_embeddings=True: source, target and output share one tensor."""
    vocab = 13
    tied = tiny_model(
        "encoder_decoder", src_vocab_size=vocab, tgt_vocab_size=vocab, tie_embeddings=True
    )
    untied = tiny_model(
        "encoder_decoder", src_vocab_size=vocab, tgt_vocab_size=vocab, tie_embeddings=False
    )
    tied_mats = vocab_matrices(tied, vocab)
    assert len(tied_mats) >= 2, "the shared matrix should be registered by more than one module"
    assert len(distinct_storages(tied_mats)) == 1
    assert len(distinct_storages(vocab_matrices(untied, vocab))) == 3
    assert mt.count_parameters(untied) - mt.count_parameters(tied) == 2 * vocab * D_MODEL


def test_encoder_decoder_tied_embeddings_with_different_vocabularies() -> None:
    """Different vocab sizes: only target embedding and output projection are shared."""
    tied = tiny_model("encoder_decoder", tie_embeddings=True)
    untied = tiny_model("encoder_decoder", tie_embeddings=False)
    assert len(distinct_storages(vocab_matrices(tied, TGT_VOCAB))) == 1
    assert len(distinct_storages(vocab_matrices(tied, SRC_VOCAB))) == 1
    assert len(distinct_storages(vocab_matrices(untied, TGT_VOCAB))) == 2
    assert mt.count_parameters(untied) - mt.count_parameters(tied) == TGT_VOCAB * D_MODEL


def test_count_parameters_counts_shared_tensors_once() -> None:
    model = tiny_model("encoder_decoder", src_vocab_size=13, tgt_vocab_size=13)
    assert mt.count_parameters(model) == sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- encode / decode


@pytest.mark.parametrize("pos", POS_ENCODINGS)
def test_encode_returns_memory_of_model_width(pos: str) -> None:
    cfg = tiny_config("encoder_decoder", pos)
    model = tiny_model("encoder_decoder", pos)
    src, _ = make_inputs(cfg)
    with torch.no_grad():
        memory = model.encode(src)
    assert memory.shape == (BATCH, SRC_LEN, D_MODEL)
    assert torch.isfinite(memory).all()


@pytest.mark.parametrize("pos", POS_ENCODINGS)
@pytest.mark.parametrize("arch", ARCHS)
def test_decode_after_encode_gives_the_forward_logits(arch: str, pos: str) -> None:
    """decode(tgt, encode(src), src) (or decode(tgt) for decoder_only) == forward, atol 1e-5."""
    cfg = tiny_config(arch, pos)
    model = tiny_model(arch, pos)
    src, tgt = make_inputs(cfg)
    with torch.no_grad():
        full = model(src, tgt).logits
        if arch == "encoder_decoder":
            logits = model.decode(tgt, model.encode(src), src)
        else:
            logits = model.decode(tgt)
    torch.testing.assert_close(logits, full, atol=ATOL, rtol=0)


@pytest.mark.parametrize("pos", POS_ENCODINGS)
@pytest.mark.parametrize("arch", ARCHS)
def test_incremental_decoding_with_a_cache_matches_the_full_pass(arch: str, pos: str) -> None:
    """Feeding tgt one token at a time through a KVCache gives the full pass's logits (1e-5)."""
    cfg = tiny_config(arch, pos)
    model = tiny_model(arch, pos)
    src, tgt = make_inputs(cfg, padded=False)
    cache = mt.KVCache()
    with torch.no_grad():
        full = model(src, tgt).logits  # (B, T, V)
        memory = model.encode(src) if src is not None else None
        steps = [model.decode(tgt[:, t : t + 1], memory, src, cache=cache) for t in range(TGT_LEN)]
    assert len(cache) == TGT_LEN
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=ATOL, rtol=0)


# --------------------------------------------------------------------------- seeds and devices


def test_seed_everything_makes_build_model_reproducible() -> None:
    cfg = tiny_config("encoder_decoder")
    mt.seed_everything(0)
    first = mt.build_model(cfg).state_dict()
    mt.seed_everything(0)
    second = mt.build_model(cfg).state_dict()
    mt.seed_everything(1)
    third = mt.build_model(cfg).state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], third[k]) for k in first)


def test_choose_device() -> None:
    assert mt.choose_device("cpu") == torch.device("cpu")
    expected_auto = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu"
    )
    assert mt.choose_device("auto").type == expected_auto


def test_choose_device_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="bogus") as info:
        mt.choose_device("bogus")
    for allowed in ("auto", "cpu", "cuda", "mps"):
        assert allowed in str(info.value)


def test_choose_device_reads_mt_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MT_DEVICE", "cpu")
    assert mt.choose_device(None) == torch.device("cpu")
    assert mt.choose_device() == torch.device("cpu")


# --------------------------------------------------------------------------- learning


def overfit_batch(arch: str) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """8 sequences of 8 tokens over 12 ids: (src, tgt_in, tgt_out), pads at the end of some rows.

    encoder_decoder: reverse src. decoder_only: memorise the sequences; each sequence starts
    with a different token, and the label of that first token (unpredictable after <bos>) is pad.
    """
    g = torch.Generator().manual_seed(0)
    n, length, vocab = 8, 8, 12
    ids = torch.randint(FIRST_ORDINARY_ID, vocab, (n, length), generator=g)
    lengths = torch.tensor([8, 8, 7, 6, 8, 5, 8, 7])
    if arch == "decoder_only":
        ids[:, 0] = torch.randperm(vocab - FIRST_ORDINARY_ID, generator=g) + FIRST_ORDINARY_ID
    keep = torch.arange(length)[None, :] < lengths[:, None]  # (n, length)
    ids = ids.masked_fill(~keep, PAD)
    target = ids.flip(1) if arch == "encoder_decoder" else ids
    if arch == "encoder_decoder":  # move the pads of the reversed row back to the end
        target = torch.stack([torch.cat([r[r != PAD], r[r == PAD]]) for r in target])
    col = torch.full((n, 1), PAD)
    tgt_in = torch.cat([torch.full((n, 1), BOS), target], dim=1)  # (n, length + 1)
    tgt_out = torch.cat([target, col], dim=1)
    tgt_out[torch.arange(n), lengths] = EOS
    if arch == "decoder_only":
        tgt_out[:, 0] = PAD
    src = ids if arch == "encoder_decoder" else None
    return src, tgt_in, tgt_out


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("pos", POS_ENCODINGS)
@pytest.mark.parametrize("arch", ARCHS)
def test_a_tiny_model_overfits_one_batch(arch: str, pos: str, path: str) -> None:
    """Adam lr 3e-3, <= 300 steps, no dropout: 100% token accuracy on non-pad labels and
    loss < 0.1 (about 45 steps are enough on every case), training through either path."""
    src, tgt_in, tgt_out = overfit_batch(arch)
    cfg = tiny_config(arch, pos, src_vocab_size=12, tgt_vocab_size=12, dropout=0.0)
    torch.manual_seed(0)
    model = mt.build_model(cfg).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    is_label = tgt_out != PAD
    accuracy = 0.0
    for _ in range(300):
        logits = forward(model, src, tgt_in, path).logits  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        correct = (logits.argmax(-1) == tgt_out) & is_label
        accuracy = correct.sum().item() / is_label.sum().item()
        if accuracy == 1.0 and loss.item() < 0.1:
            break
    assert accuracy == 1.0, f"token accuracy {accuracy:.3f}, loss {loss.item():.3f}"
    assert loss.item() < 0.1
