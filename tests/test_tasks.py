"""Tasks: determinism, disjoint splits, gold alignments, language spot checks, user loaders."""

from __future__ import annotations

import warnings

import pytest
import torch

import minitransformer as mt
from minitransformer.tasks.number_words import (
    align_words,
    english_words,
    french_words,
    german_words,
    text,
)
from minitransformer.tasks.synthetic import addition_alignment

SMALL = {
    "copy": dict(n_train=60, n_valid=10, n_test=10),
    "reverse": dict(n_train=60, n_valid=10, n_test=10),
    "sort": dict(n_train=60, n_valid=10, n_test=10),
    "addition": dict(n_train=60, n_valid=10, n_test=10),
    "numbers_en_de": dict(n_valid=10, n_test=10, max_number=99),
    "numbers_en_fr": dict(n_valid=10, n_test=10, max_number=99),
    "dates": dict(n_train=60, n_valid=10, n_test=10),
    "arithmetic_lm": dict(n_train=60, n_valid=10, n_test=10),
    "grammar_lm": dict(n_train=60, n_valid=10, n_test=10),
}


def test_list_tasks_names_every_builtin():
    assert mt.list_tasks() == sorted(SMALL)


def test_unknown_task_or_option_lists_the_known_ones():
    with pytest.raises(ValueError, match="'nope'.*copy.*reverse"):
        mt.get_task("nope")
    with pytest.raises(ValueError, match="'lenght'.*max_len"):
        mt.get_task("reverse", lenght=5)
    assert mt.task_options("reverse")["max_len"] == 12


@pytest.mark.parametrize("name", sorted(SMALL))
def test_task_is_deterministic_disjoint_and_aligned(name):
    task = mt.get_task(name, seed=0, **SMALL[name])
    again = mt.get_task(name, seed=0, **SMALL[name])
    other = mt.get_task(name, seed=1, **SMALL[name])
    assert (task.train, task.valid, task.test) == (again.train, again.valid, again.test)
    assert task.train != other.train
    assert task.kind in ("seq2seq", "lm") and task.description
    key = (lambda ex: ex.tgt) if task.kind == "lm" else (lambda ex: ex.src)
    train_keys = {key(ex) for ex in task.train}
    assert not train_keys & {key(ex) for ex in task.test}
    assert not train_keys & {key(ex) for ex in task.valid}
    assert task.has_alignment == (task.kind == "seq2seq")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a built-in task never produces <unk>
        encoded = [task.encode_example(ex) for ex in task.train + task.valid + task.test]
    for ex, (src_ids, tgt_ids) in zip(task.train + task.valid + task.test, encoded, strict=True):
        if task.kind == "lm":
            assert ex.src == "" and ex.alignment is None and src_ids == []
            continue
        assert ex.alignment, ex
        assert all(0 <= i < len(tgt_ids) and 0 <= j < len(src_ids) for i, j in ex.alignment)
    assert task.max_tgt_len == max(len(t) for _, t in encoded) + 1
    if task.kind == "seq2seq":
        assert task.max_src_len == max(len(s) for s, _ in encoded) + 1


def test_copy_and_reverse_alignments():
    copy = mt.get_task("copy", **SMALL["copy"])
    for ex in copy.train[:20]:
        assert ex.src == ex.tgt
        assert ex.alignment == tuple((i, i) for i in range(len(ex.src)))
    rev = mt.get_task("reverse", **SMALL["reverse"])
    for ex in rev.train:
        n = len(ex.src)
        assert 2 <= n <= 12
        assert ex.tgt == ex.src[::-1]
        assert ex.alignment == tuple((i, n - 1 - i) for i in range(n))
        matrix = rev.gold_alignment_matrix(ex)
        assert torch.equal(matrix, torch.eye(n).flip(1))


def test_sort_alignment_points_at_the_source_symbol():
    task = mt.get_task("sort", **SMALL["sort"])
    for ex in task.train:
        assert ex.tgt == "".join(sorted(ex.src))
        assert all(ex.tgt[i] == ex.src[j] for i, j in ex.alignment)
        assert sorted(j for _, j in ex.alignment) == list(range(len(ex.src)))  # permutation


def test_word_level_symbols_keep_the_same_alignment():
    char = mt.get_task("reverse", **SMALL["reverse"])
    word = mt.get_task("reverse", level="word", **SMALL["reverse"])
    assert word.train[0].src == " ".join(char.train[0].src)
    assert word.train[0].alignment == char.train[0].alignment
    assert isinstance(word.src_tokenizer, mt.WordTokenizer)


def test_addition_answers_and_place_value_alignment():
    task = mt.get_task("addition", **SMALL["addition"])
    for ex in task.train:
        a, b = ex.src.split("+")
        assert int(ex.tgt) == int(a) + int(b)
    # 27+45=72: '7' <- '2','4' (tens), '2' <- '7','5' (units)
    assert addition_alignment("27", "45", "72", False) == ((0, 0), (0, 3), (1, 1), (1, 4))
    # 7+5=12: the carry digit '1' <- the unit digits that produced it
    assert addition_alignment("7", "5", "12", False) == ((0, 0), (0, 2), (1, 0), (1, 2))
    assert addition_alignment("27", "45", "72", True) == ((0, 1), (0, 4), (1, 0), (1, 3))
    rev = mt.get_task("addition", reverse_answer=True, **SMALL["addition"])
    for ex in rev.train:
        a, b = ex.src.split("+")
        assert int(ex.tgt[::-1]) == int(a) + int(b)


def test_german_number_words():
    assert text(german_words(21)) == "ein und zwanzig"
    assert align_words(german_words(21), english_words(21)) == ((0, 1), (2, 0))
    cases = {0: "null", 1: "eins", 16: "sechzehn", 17: "siebzehn", 30: "dreißig",
             101: "ein hundert eins", 321: "drei hundert ein und zwanzig", 999:
             "neun hundert neun und neunzig"}  # fmt: skip
    for n, words in cases.items():
        assert text(german_words(n)) == words
    assert text(english_words(321)) == "three hundred twenty one"
    # three hundred twenty one -> drei hundert ein und zwanzig ("und" aligns to nothing)
    assert align_words(german_words(321), english_words(321)) == ((0, 0), (1, 1), (2, 3), (4, 2))


def test_french_number_words():
    cases = {0: "zéro", 17: "dix sept", 21: "vingt et un", 22: "vingt deux",
             70: "soixante dix", 71: "soixante et onze", 72: "soixante douze",
             77: "soixante dix sept", 80: "quatre vingts", 81: "quatre vingt un",
             90: "quatre vingt dix", 91: "quatre vingt onze", 99: "quatre vingt dix neuf",
             100: "cent", 101: "cent un", 200: "deux cents", 201: "deux cent un",
             280: "deux cent quatre vingts", 571: "cinq cent soixante et onze"}  # fmt: skip
    for n, words in cases.items():
        assert text(french_words(n)) == words, n
    # seventy one -> soixante et onze: onze carries the ten of "seventy" and the "one"
    assert align_words(french_words(71), english_words(71)) == ((0, 0), (2, 0), (2, 1))
    assert align_words(french_words(80), english_words(80)) == ((0, 0), (1, 0))
    with pytest.raises(ValueError, match="1000"):
        french_words(1000)


def test_numbers_tasks_hold_out_test_numbers():
    task = mt.get_task("numbers_en_de")
    assert len(task.train) + len(task.valid) + len(task.test) == 1000
    train_src = {ex.src for ex in task.train}
    assert task.test and all(ex.src not in train_src for ex in task.test)
    example = mt.Example("twenty one", "ein und zwanzig", ((0, 1), (2, 0)))
    assert example in task.train + task.valid + task.test
    gold = task.gold_alignment_matrix(example)
    assert gold.tolist() == [[0, 1], [0, 0], [1, 0]]
    full = task.gold_alignment_matrix(example, include_specials=True)
    assert full.shape == (4, 3) and full[:3, :2].equal(gold) and full[3].sum() == 0
    fr = mt.get_task("numbers_en_fr")
    pairs = {ex.src: ex.tgt for ex in fr.train + fr.valid + fr.test}
    assert pairs["seventy one"] == "soixante et onze"
    assert pairs["eighty"] == "quatre vingts"
    assert pairs["ninety one"] == "quatre vingt onze"


def test_dates_spot_check():
    import datetime as dt

    from minitransformer.tasks.translation import date_example

    ex = date_example(dt.date(2024, 3, 21), "mdy")
    assert (ex.src, ex.tgt) == ("march 21 2024", "2024 - 03 - 21")
    assert ex.alignment == ((0, 2), (2, 0), (4, 1))
    ex = date_example(dt.date(1999, 12, 5), "dmy")
    assert (ex.src, ex.tgt) == ("5 december 1999", "1999 - 12 - 05")
    assert ex.alignment == ((0, 2), (2, 1), (4, 0))
    task = mt.get_task("dates", **SMALL["dates"])
    for example in task.train:
        year, _, month, _, day = example.tgt.split()
        dt.date(int(year), int(month), int(day))  # a real date
        assert year in example.src.split()


def test_lm_tasks():
    arith = mt.get_task("arithmetic_lm", **SMALL["arithmetic_lm"])
    for ex in arith.train:
        left, right = ex.tgt.split("=")
        a, b = left.split("+")
        assert int(a) + int(b) == int(right)
    assert arith.src_tokenizer is arith.tgt_tokenizer
    grammar = mt.get_task("grammar_lm", **SMALL["grammar_lm"])
    assert all(ex.tgt.endswith(" .") for ex in grammar.train)
    with pytest.raises(ValueError, match="has no gold alignment"):
        grammar.gold_alignment_matrix(grammar.train[0])


@pytest.mark.parametrize(
    "name, options, match",
    [
        ("copy", dict(n_train=0), "n_train must be >= 1, got 0"),
        ("copy", dict(min_len=5, max_len=3), "min_len \\(5\\) must be <= max_len \\(3\\)"),
        ("copy", dict(level="bpe"), "'bpe'"),
        ("copy", dict(alphabet="a b"), "'a b'"),
        ("sort", dict(alphabet="abc", max_len=5), "max_len \\(5\\)"),
        ("addition", dict(max_digits=1, n_train=200), "only 100 exist"),
        ("numbers_en_de", dict(max_number=5000), "5000"),
        ("dates", dict(orders=("ymd",)), "ymd"),
        ("arithmetic_lm", dict(ops=("*",)), "'\\*'"),
    ],
)
def test_bad_task_options_name_the_value(name, options, match):
    with pytest.raises(ValueError, match=match):
        mt.get_task(name, **options)


# --- user data ----------------------------------------------------------------------------
PAIRS = [(f"word{i} and more", f"wort{i} und mehr") for i in range(30)]


def test_task_from_pairs_splits_reproducibly():
    task = mt.task_from_pairs(PAIRS, name="toy", level="word", valid_fraction=0.2, seed=0)
    assert task.name == "toy" and task.kind == "seq2seq" and not task.has_alignment
    assert (len(task.train), len(task.valid), len(task.test)) == (21, 6, 3)
    again = mt.task_from_pairs(PAIRS, name="toy", level="word", valid_fraction=0.2, seed=0)
    assert task.valid == again.valid
    assert mt.task_from_pairs(PAIRS, name="toy", valid_fraction=0.2, seed=1).valid != task.valid
    assert task.src_tokenizer is not task.tgt_tokenizer
    assert next(task.batches("train", 4)).src.shape[0] == 4


def test_task_from_pairs_keeps_a_source_in_one_split():
    pairs = [("same source", f"target {i}") for i in range(5)] + PAIRS
    task = mt.task_from_pairs(pairs, level="char", seed=3)
    splits = [s for s in ("train", "valid", "test") if any(
        ex.src == "same source" for ex in task.split(s))]  # fmt: skip
    assert len(splits) == 1


def test_task_from_pairs_bpe_level():
    pytest.importorskip("tokenizers")
    task = mt.task_from_pairs(PAIRS, level="bpe", vocab_size=60, shared_vocab=True)
    assert isinstance(task.src_tokenizer, mt.BPETokenizer) and task.shared_vocab
    ex = task.train[0]
    assert task.tgt_tokenizer.decode(task.encode_example(ex)[1]) == ex.tgt


@pytest.mark.parametrize(
    "pairs, match",
    [
        ([], "no pairs"),
        ([("a", "b"), ("c", "d", "e")], "pair 2: expected exactly 2 fields"),
        ([("a", "b"), ("c", "  ")], "pair 2: the target is empty"),
        ([("", "b")], "pair 1: the source is empty"),
        (["ab"], "pair 1"),
    ],
)
def test_task_from_pairs_rejects_bad_pairs(pairs, match):
    with pytest.raises(ValueError, match=match):
        mt.task_from_pairs(pairs)


def test_task_from_pairs_rejects_bad_fractions_and_levels():
    with pytest.raises(ValueError, match="valid_fraction must be a number in \\[0, 1\\), got 1.5"):
        mt.task_from_pairs(PAIRS, valid_fraction=1.5)
    with pytest.raises(ValueError, match="'morpheme'"):
        mt.task_from_pairs(PAIRS, level="morpheme")
    with pytest.raises(ValueError, match="too few"):
        mt.task_from_pairs(PAIRS[:2], valid_fraction=0.5, test_fraction=0.5 - 1e-9)


def test_task_from_tsv(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"{s}\t{t}\n" for s, t in PAIRS) + "\n", encoding="utf-8")
    task = mt.task_from_tsv(path)
    assert task.name == "pairs"
    assert len(task.train) + len(task.valid) + len(task.test) == len(PAIRS)
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\n\nc\td\te\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.tsv line 3: expected exactly 2 tab-separated"):
        mt.task_from_tsv(bad)
    empty_side = tmp_path / "side.tsv"
    empty_side.write_text("a\tb\nc\t\n", encoding="utf-8")
    with pytest.raises(ValueError, match="side.tsv line 2: the target is empty"):
        mt.task_from_tsv(empty_side)
    blank = tmp_path / "blank.tsv"
    blank.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no pairs"):
        mt.task_from_tsv(blank)
    latin = tmp_path / "latin.tsv"
    latin.write_bytes("caf\xe9\tcoffee\n".encode("latin-1"))
    with pytest.raises(ValueError, match="encoding="):
        mt.task_from_tsv(latin)
    latin_task = mt.task_from_tsv(latin, encoding="latin-1", valid_fraction=0, test_fraction=0)
    assert latin_task.train[0].src == "café"


def test_task_from_text_file(tmp_path):
    path = tmp_path / "story.txt"
    lines = [f"line number {i} of the story" for i in range(40)]
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    task = mt.task_from_text_file(path, level="char")
    assert task.kind == "lm" and task.name == "story"
    assert sorted(ex.tgt for ex in task.train + task.valid + task.test) == sorted(lines)
    assert all(ex.src == "" for ex in task.train)
    chunks = mt.task_from_text_file(path, level="word", mode="chunk", max_chars=50)
    pieces = chunks.train + chunks.valid + chunks.test
    assert all(len(ex.tgt) <= 50 for ex in pieces)
    assert sum(len(ex.tgt.split()) for ex in pieces) == sum(len(x.split()) for x in lines)
    with pytest.raises(ValueError, match="mode 'page'"):
        mt.task_from_text_file(path, mode="page")
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty.txt.*no text"):
        mt.task_from_text_file(empty)
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        mt.task_from_text_file(tmp_path / "nope.txt")


def test_task_from_text_file_bpe(tmp_path):
    pytest.importorskip("tokenizers")
    path = tmp_path / "t.txt"
    path.write_text("\n".join(f"the cat {i} sat on the mat" for i in range(30)), encoding="utf-8")
    task = mt.task_from_text_file(path, level="bpe", vocab_size=60)
    assert isinstance(task.tgt_tokenizer, mt.BPETokenizer)
    assert task.max_tgt_len < max(len(ex.tgt) for ex in task.train) + 1  # merges shorten


def test_tasks_package_does_not_import_model_trainer_or_viz(repo_root):
    """Data flows one way: importing the task modules loads no model, trainer or viz code."""
    import json
    import subprocess
    import sys

    # Stub the package __init__ (which re-exports everything) and import the tasks alone.
    package_dir = str(repo_root / "minitransformer")
    code = (
        "import json, sys, types\n"
        f"pkg = types.ModuleType('minitransformer'); pkg.__path__ = [{package_dir!r}]\n"
        "sys.modules['minitransformer'] = pkg\n"
        "import minitransformer.tasks, minitransformer.tasks.generate\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('minitransformer.'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert "minitransformer.tasks.base" in loaded
    forbidden = {"model", "trainer", "viz", "recorder", "attention", "layers", "decoding"}
    assert not [m for m in loaded if m.split(".")[1] in forbidden], loaded
