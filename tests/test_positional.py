"""Positional encodings: the paper's sinusoid, what goes into the state dict, and what each
encoding lets the encoder see (absolute position, relative position, or none)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minitransformer as mt

PAD = 0
D_MODEL, MAX_LEN, VOCAB = 32, 37, 13  # MAX_LEN differs from every other size on purpose
ATOL = 1e-5


def tiny_config(arch: str, pos: str, **overrides) -> mt.ModelConfig:
    fields = dict(
        arch=arch, src_vocab_size=VOCAB, tgt_vocab_size=VOCAB, d_model=D_MODEL, n_heads=4,
        n_encoder_layers=2, n_decoder_layers=2, d_ff=64, dropout=0.1, max_len=MAX_LEN,
        pad_id=PAD, pos_encoding=pos, norm_first=False, tie_embeddings=True,
    )
    fields.update(overrides)
    return mt.ModelConfig(**fields)


def tiny_encoder(pos: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return mt.build_model(tiny_config("encoder_decoder", pos)).eval()


def paper_formula(max_len: int, d_model: int) -> np.ndarray:
    """PE(pos, 2i) = sin(pos / 10000^(2i/d_model)), PE(pos, 2i+1) = cos(same), in float64."""
    table = np.zeros((max_len, d_model), dtype=np.float64)
    for pos in range(max_len):
        for i in range(d_model // 2):
            angle = pos / 10000 ** (2 * i / d_model)
            table[pos, 2 * i] = np.sin(angle)
            table[pos, 2 * i + 1] = np.cos(angle)
    return table


@pytest.mark.parametrize(("max_len", "d_model"), [(50, 16), (128, 64), (3, 2)])
def test_sinusoidal_encoding_matches_the_paper(max_len: int, d_model: int) -> None:
    """Against an independent float64 computation, atol 1e-5."""
    table = mt.sinusoidal_encoding(max_len, d_model)
    assert isinstance(table, torch.Tensor)
    assert table.shape == (max_len, d_model)
    np.testing.assert_allclose(
        table.double().numpy(), paper_formula(max_len, d_model), atol=ATOL, rtol=0
    )


def rows_of_width(tensor: torch.Tensor, width: int) -> torch.Tensor | None:
    """The tensor as (rows, width) if its last dimension is ``width``, else None."""
    if tensor.ndim < 2 or tensor.shape[-1] != width:
        return None
    return tensor.reshape(-1, width)


@pytest.mark.parametrize("arch", ["encoder_decoder", "decoder_only"])
def test_sinusoidal_table_is_not_saved_in_the_state_dict(arch: str) -> None:
    """No state_dict tensor holds the table (it is a non-persistent buffer)."""
    torch.manual_seed(0)
    model = mt.build_model(tiny_config(arch, "sinusoidal"))
    table = mt.sinusoidal_encoding(MAX_LEN, D_MODEL)
    for key, tensor in model.state_dict().items():
        rows = rows_of_width(tensor, D_MODEL)
        if rows is None or rows.shape[0] < MAX_LEN:
            continue
        holds_table = torch.allclose(rows[:MAX_LEN].float().cpu(), table.float(), atol=ATOL)
        assert not holds_table, f"state_dict key {key!r} holds the sinusoidal table"


@pytest.mark.parametrize("arch", ["encoder_decoder", "decoder_only"])
def test_parameter_free_encodings_add_nothing_to_the_state_dict(arch: str) -> None:
    """sinusoidal, rope and none save the same keys; learned adds a (max_len, d_model) table."""
    keys = {}
    for pos in ("sinusoidal", "rope", "none", "learned"):
        torch.manual_seed(0)
        keys[pos] = set(mt.build_model(tiny_config(arch, pos)).state_dict())
    assert keys["sinusoidal"] == keys["none"]
    assert keys["rope"] == keys["none"]

    torch.manual_seed(0)
    learned = mt.build_model(tiny_config(arch, "learned")).state_dict()
    extra = keys["learned"] - keys["none"]
    assert extra, "the learned positional table is missing from the state dict"
    tables = [learned[k] for k in extra]
    assert any(rows_of_width(t, D_MODEL) is not None and t.numel() >= MAX_LEN * D_MODEL
               for t in tables), {k: tuple(learned[k].shape) for k in extra}


def test_learned_table_is_a_trainable_parameter() -> None:
    torch.manual_seed(0)
    model = mt.build_model(tiny_config("decoder_only", "learned"))
    plain = mt.build_model(tiny_config("decoder_only", "none"))
    assert mt.count_parameters(model) - mt.count_parameters(plain) >= MAX_LEN * D_MODEL


def some_src(length: int = 6) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randperm(VOCAB - 4, generator=g)[:length].add(4)[None, :]  # (1, S) distinct ids


@pytest.mark.parametrize("pos", ["sinusoidal", "learned", "rope", "none"])
def test_only_none_makes_the_encoder_permutation_equivariant(pos: str) -> None:
    """Without positions, permuting the source permutes the memory rows (atol 1e-5)."""
    model = tiny_encoder(pos)
    src = some_src()
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    with torch.no_grad():
        memory = model.encode(src)  # (1, S, d_model)
        permuted = model.encode(src[:, perm])
    equivariant = torch.allclose(permuted, memory[:, perm], atol=ATOL)
    assert equivariant == (pos == "none")


@pytest.mark.parametrize("pos", ["sinusoidal", "learned", "rope", "none"])
@pytest.mark.parametrize("arch", ["encoder_decoder", "decoder_only"])
def test_only_relative_encodings_ignore_left_padding(arch: str, pos: str) -> None:
    """Shifting real tokens right by two pads changes nothing for rope and none (atol 1e-5),
    since they see only relative positions (or none); absolute encodings see the shift.
    encoder_decoder: the encoder's memory; decoder_only: the logits (left-padded prompts)."""
    torch.manual_seed(0)
    model = mt.build_model(tiny_config(arch, pos)).eval()
    ids = some_src()
    shifted = torch.cat([torch.full((1, 2), PAD), ids], dim=1)
    with torch.no_grad():
        if arch == "encoder_decoder":
            plain, moved = model.encode(ids), model.encode(shifted)[:, 2:]
        else:
            plain, moved = model(None, ids).logits, model(None, shifted).logits[:, 2:]
    unchanged = torch.allclose(plain, moved, atol=ATOL)
    assert unchanged == (pos in ("rope", "none"))
