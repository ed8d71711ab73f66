"""Bad input gets a clear error that names the value given and the limit or allowed values."""

from __future__ import annotations

import re

import pytest
import torch

import minitransformer as mt

PAD, BOS = 0, 1
SRC_VOCAB, TGT_VOCAB, MAX_LEN = 11, 13, 16
POS_ENCODINGS = ("sinusoidal", "learned", "rope", "none")


def tiny_config(arch: str = "encoder_decoder", pos: str = "sinusoidal", **overrides):
    fields = dict(
        arch=arch, src_vocab_size=SRC_VOCAB, tgt_vocab_size=TGT_VOCAB, d_model=32, n_heads=4,
        n_encoder_layers=1, n_decoder_layers=1, d_ff=64, dropout=0.1, max_len=MAX_LEN,
        pad_id=PAD, pos_encoding=pos, norm_first=False, tie_embeddings=True,
    )
    fields.update(overrides)
    return mt.ModelConfig(**fields)


def tiny_model(arch: str = "encoder_decoder", pos: str = "sinusoidal") -> torch.nn.Module:
    torch.manual_seed(0)
    return mt.build_model(tiny_config(arch, pos)).eval()


def ids(length: int, vocab: int, batch: int = 2) -> torch.Tensor:
    out = torch.randint(4, vocab, (batch, length), generator=torch.Generator().manual_seed(0))
    out[:, 0] = BOS
    return out


def assert_names(error: pytest.ExceptionInfo, *words: str) -> None:
    """The message contains each word (as a whole token, so '1' does not match '16')."""
    message = str(error.value)
    for word in words:
        pattern = rf"(?<![\w.]){re.escape(word)}(?![\w])"
        assert re.search(pattern, message), f"{word!r} not named in: {message}"


# --------------------------------------------------------------------------- config


def test_d_model_not_divisible_by_n_heads() -> None:
    with pytest.raises(ValueError, match="d_model") as error:
        tiny_config(d_model=30, n_heads=7)
    assert_names(error, "30", "7", "n_heads")


def test_unknown_positional_encoding_lists_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="pos_encoding") as error:
        tiny_config(pos="alibi")
    assert_names(error, "alibi", *POS_ENCODINGS)


def test_unknown_arch_lists_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="arch") as error:
        tiny_config(arch="encoder_only")
    assert_names(error, "encoder_only", "encoder_decoder", "decoder_only")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("d_model", 0),
        ("n_heads", -1),
        ("n_heads", 0),
        ("d_ff", 0),
        ("max_len", 0),
        ("src_vocab_size", 0),
        ("tgt_vocab_size", 0),
        ("tgt_vocab_size", -5),
        ("n_decoder_layers", -1),
        ("n_decoder_layers", 0),
        ("n_encoder_layers", 0),
    ],
)
def test_non_positive_sizes(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=field) as error:
        tiny_config(**{field: value})
    assert_names(error, str(value))


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5])
def test_dropout_outside_zero_one(value: float) -> None:
    with pytest.raises(ValueError, match="dropout") as error:
        tiny_config(dropout=value)
    assert_names(error, str(value))


def test_dropout_zero_is_allowed() -> None:
    assert tiny_config(dropout=0.0).dropout == 0.0


# --------------------------------------------------------------------------- forward


@pytest.mark.parametrize("pos", POS_ENCODINGS)
@pytest.mark.parametrize("arch", ["encoder_decoder", "decoder_only"])
def test_target_longer_than_max_len(arch: str, pos: str) -> None:
    model = tiny_model(arch, pos)
    src = ids(5, SRC_VOCAB) if arch == "encoder_decoder" else None
    with pytest.raises(ValueError, match="max_len") as error:
        model(src, ids(MAX_LEN + 3, TGT_VOCAB))
    assert_names(error, str(MAX_LEN + 3), str(MAX_LEN))
    # exactly max_len is fine, and the model still works after the error
    assert model(src, ids(MAX_LEN, TGT_VOCAB)).logits.shape == (2, MAX_LEN, TGT_VOCAB)


@pytest.mark.parametrize("pos", POS_ENCODINGS)
def test_source_longer_than_max_len(pos: str) -> None:
    model = tiny_model("encoder_decoder", pos)
    with pytest.raises(ValueError, match="max_len") as error:
        model(ids(MAX_LEN + 1, SRC_VOCAB), ids(4, TGT_VOCAB))
    assert_names(error, str(MAX_LEN + 1), str(MAX_LEN))
    with pytest.raises(ValueError, match="max_len"):
        model.encode(ids(MAX_LEN + 1, SRC_VOCAB))


@pytest.mark.parametrize("output_attentions", [False, True])
def test_src_given_to_a_decoder_only_model(output_attentions: bool) -> None:
    model = tiny_model("decoder_only")
    with pytest.raises(ValueError, match=r"decoder[-_ ]only.*src|src.*decoder[-_ ]only"):
        model(ids(4, SRC_VOCAB), ids(4, TGT_VOCAB), output_attentions=output_attentions)


def test_src_missing_for_an_encoder_decoder_model() -> None:
    model = tiny_model("encoder_decoder")
    with pytest.raises(ValueError, match="src"):
        model(None, ids(4, TGT_VOCAB))


@pytest.mark.parametrize("bad_id", [TGT_VOCAB, 99, -1])
@pytest.mark.parametrize("arch", ["encoder_decoder", "decoder_only"])
def test_target_ids_outside_the_vocabulary(arch: str, bad_id: int) -> None:
    model = tiny_model(arch)
    src = ids(5, SRC_VOCAB) if arch == "encoder_decoder" else None
    tgt = ids(6, TGT_VOCAB)
    tgt[1, 3] = bad_id
    with pytest.raises(IndexError) as error:
        model(src, tgt)
    assert_names(error, str(bad_id), str(TGT_VOCAB))


@pytest.mark.parametrize("bad_id", [SRC_VOCAB, 50, -3])
def test_source_ids_outside_the_vocabulary(bad_id: int) -> None:
    model = tiny_model("encoder_decoder")
    src = ids(5, SRC_VOCAB)
    src[0, 2] = bad_id
    with pytest.raises(IndexError) as error:
        model(src, ids(6, TGT_VOCAB))
    assert_names(error, str(bad_id), str(SRC_VOCAB))


@pytest.mark.parametrize("arch", ["encoder_decoder", "decoder_only"])
def test_float_ids_are_refused(arch: str) -> None:
    model = tiny_model(arch)
    src = ids(5, SRC_VOCAB) if arch == "encoder_decoder" else None
    with pytest.raises((ValueError, TypeError), match=r"(?i)dtype|float|integer|long"):
        model(src, ids(6, TGT_VOCAB).float())
    if arch == "encoder_decoder":
        with pytest.raises((ValueError, TypeError), match=r"(?i)dtype|float|integer|long"):
            model(src.float(), ids(6, TGT_VOCAB))


@pytest.mark.parametrize("shape", [(6,), (2, 6, 1)])
@pytest.mark.parametrize("arch", ["encoder_decoder", "decoder_only"])
def test_ids_of_the_wrong_rank_are_refused(arch: str, shape: tuple[int, ...]) -> None:
    model = tiny_model(arch)
    src = ids(5, SRC_VOCAB) if arch == "encoder_decoder" else None
    tgt = torch.full(shape, 5)
    with pytest.raises((ValueError, TypeError), match=r"(?i)shape|dim|rank|\(B, ?T\)"):
        model(src, tgt)
    if arch == "encoder_decoder":
        with pytest.raises((ValueError, TypeError), match=r"(?i)shape|dim|rank|\(B, ?S\)"):
            model(torch.full(shape, 5), ids(6, TGT_VOCAB))
