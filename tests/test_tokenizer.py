"""Tokenizers: round trips, special ids, <unk> counting and warnings, JSON save/load."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

import minitransformer as mt
from minitransformer.tokenizer import tokenizer_from_dict

TEXTS = ["the cat sat on the mat", "a dog ran", "the dog sat"]
LEVELS = ["char", "word", "bpe"]


def fitted(level: str, texts: list[str] = TEXTS) -> mt.Tokenizer:
    if level == "bpe":
        pytest.importorskip("tokenizers")
        return mt.BPETokenizer.from_texts(texts * 5, vocab_size=40)
    return mt.make_tokenizer(level).fit(texts)


@pytest.mark.parametrize("level", LEVELS)
def test_special_ids_and_strings(level):
    tok = fitted(level)
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id) == (0, 1, 2, 3)
    assert tok.tokens_to_strings([0, 1, 2, 3]) == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert mt.SPECIAL_TOKENS == ("<pad>", "<bos>", "<eos>", "<unk>")


@pytest.mark.parametrize("level", LEVELS)
def test_round_trip_and_specials_placement(level):
    tok = fitted(level)
    for text in TEXTS:
        ids = tok.encode(text, add_bos=True, add_eos=True)
        assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
        assert all(i > tok.unk_id for i in ids[1:-1])
        assert tok.decode(ids) == text
        assert tok.decode(torch.tensor(ids)) == text  # tensors decode too
        assert tok.decode(ids, skip_special=False).startswith("<bos>")
    assert tok.encode(TEXTS[0]) == tok.encode_batch([TEXTS[0]])[0]


def test_char_vocab_is_sorted_and_deterministic():
    tok = mt.CharTokenizer.from_texts(["cba", "b a"])
    assert tok.vocab == ["<pad>", "<bos>", "<eos>", "<unk>", " ", "a", "b", "c"]
    assert mt.CharTokenizer.from_texts(["b a", "cba"]) == tok  # input order does not matter
    assert tok.vocab_size == len(tok) == 8


def test_word_tokenizer_splits_on_whitespace():
    tok = mt.WordTokenizer.from_texts(["ein und zwanzig", "zwei  und\tdreißig"])
    assert tok.vocab[4:] == sorted(["ein", "und", "zwanzig", "zwei", "dreißig"])
    assert tok.tokenize("zwei und zwanzig") == ["zwei", "und", "zwanzig"]
    assert tok.decode(tok.encode("zwei   und zwanzig")) == "zwei und zwanzig"


def test_tokens_to_strings_shows_invisible_characters():
    tok = mt.CharTokenizer.from_texts(["a b\nc\td"])
    labels = tok.tokens_to_strings(tok.encode("a b\nc\td", add_eos=True))
    assert labels == ["a", "␣", "b", "⏎", "c", "⇥", "d", "<eos>"]


@pytest.mark.parametrize("level", LEVELS)
def test_unknown_tokens_map_to_unk_and_warn_once_per_batch(level):
    tok = fitted(level)
    text = "the zebra" if level == "word" else "the Qx"  # Q and x never seen
    with pytest.warns(mt.UnknownTokenWarning, match="unknown") as record:
        ids = tok.encode(text)
    assert len(record) == 1
    n_unknown = ids.count(tok.unk_id)
    assert n_unknown >= 1
    assert tok.unk_count == n_unknown
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batch = tok.encode_batch([text] * 10)
    assert [w.category for w in caught] == [mt.UnknownTokenWarning]  # one warning, not ten
    assert str(10 * n_unknown) in str(caught[0].message)
    assert tok.unk_count == 11 * n_unknown
    assert all(row.count(tok.unk_id) == n_unknown for row in batch)


def test_encode_warn_false_counts_silently():
    tok = mt.CharTokenizer.from_texts(["ab"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tok.encode("abz", warn=False) == [4, 5, 3]
    assert tok.unk_count == 1


def test_unk_stays_visible_in_decode():
    tok = mt.WordTokenizer.from_texts(["a b"])
    assert tok.decode([4, 3, 5, 2, 0]) == "a <unk> b"
    assert tok.decode([4, 2, 5], stop_at_eos=True) == "a"


@pytest.mark.parametrize("level", LEVELS)
def test_save_load_json_equality(level, tmp_path):
    tok = fitted(level)
    path = tok.save(tmp_path / "sub" / "tok.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["type"] == level
    loaded = mt.load_tokenizer(path)
    assert type(loaded) is type(tok)
    assert loaded == tok
    assert loaded.to_dict() == tok.to_dict()
    for text in TEXTS:
        assert loaded.encode(text) == tok.encode(text)
    assert not list(tmp_path.glob("sub/*.tmp"))  # atomic write left no temp file


def test_bpe_is_deterministic_and_respects_vocab_size():
    pytest.importorskip("tokenizers")
    texts = ["lower newer wider", "low new wide", "the lowest newest widest"] * 20
    a = mt.BPETokenizer.from_texts(texts, vocab_size=50)
    b = mt.BPETokenizer.from_texts(texts, vocab_size=50)
    assert a == b
    assert a.vocab_size <= 50
    assert len(a.encode("lowest newest")) < len("lowest newest")  # merges happened
    assert mt.BPETokenizer.from_texts(texts, vocab_size=30) != a


def test_bpe_labels_mark_spaces():
    pytest.importorskip("tokenizers")
    tok = mt.BPETokenizer.from_texts(["the cat the cat the cat"], vocab_size=30)
    labels = tok.tokens_to_strings(tok.encode("the cat"))
    assert "".join(labels) == "␣the␣cat"


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: mt.make_tokenizer("sentencepiece"), "sentencepiece"),
        (lambda: mt.make_tokenizer("char", vocab_size=10), "vocab_size"),
        (lambda: mt.BPETokenizer(vocab_size=2), "vocab_size.*2"),
        (lambda: mt.CharTokenizer.from_texts(["ab"]).decode([0, 99]), "99.*vocab_size=6"),
        (lambda: mt.CharTokenizer(["a", "a"]), "repeated"),
        (lambda: mt.CharTokenizer(["<pad>"]), "clash"),
        (lambda: tokenizer_from_dict({"format": "other"}), "format"),
    ],
)
def test_bad_input_raises_value_error_naming_the_value(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_unfitted_or_misused_tokenizer_says_what_to_do(tmp_path):
    with pytest.raises(RuntimeError, match="fit"):
        mt.CharTokenizer().encode("a")
    with pytest.raises(TypeError, match="list of texts"):
        mt.WordTokenizer().fit("a b c")
    with pytest.raises(TypeError, match="str"):
        mt.CharTokenizer.from_texts(["a"]).encode(["a"])  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="missing.json"):
        mt.load_tokenizer(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.json"):
        mt.load_tokenizer(bad)
