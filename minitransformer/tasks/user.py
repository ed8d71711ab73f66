"""Tasks from a user's own data: sentence pairs (a list or a TSV file) or a plain text file.

    task = task_from_pairs([("hello", "hallo"), ("good morning", "guten morgen")], level="word")
    task = task_from_tsv("pairs.tsv", level="bpe", vocab_size=2000)    # source<TAB>target a line
    task = task_from_text_file("shakespeare.txt", level="char")         # language model

Splits are random but reproducible from `seed`. Pairs are grouped by source, so a source in
valid/test never appears in train. Tokenizers are fitted on all splits (see `Task`). User data
has no gold alignment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .base import Example, Task
from .sampling import task_rng

USER_LEVELS = ("char", "word", "bpe")
TEXT_MODES = ("line", "chunk")


def _check_fractions(valid_fraction: float, test_fraction: float) -> None:
    for field, value in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
            raise ValueError(f"{field} must be a number in [0, 1), got {value!r}")
    if valid_fraction + test_fraction >= 1:
        raise ValueError(
            f"valid_fraction + test_fraction must be < 1 to leave training data, got "
            f"{valid_fraction} + {test_fraction}"
        )


def _check_level(level: str, vocab_size: int | None) -> dict[str, Any]:
    if level not in USER_LEVELS:
        raise ValueError(f"level {level!r} is not known; choose one of {USER_LEVELS}")
    if level != "bpe":
        if vocab_size is not None:
            raise ValueError(f"vocab_size only applies to level='bpe', not level={level!r}")
        return {}
    return {"vocab_size": 1000 if vocab_size is None else vocab_size}


def _split_groups(
    groups: list[list[Example]], valid_fraction: float, test_fraction: float, name: str, seed: int
) -> tuple[list[Example], list[Example], list[Example]]:
    """Shuffle groups and cut them into train/valid/test; every split gets >= 1 group if asked."""
    n = len(groups)
    order = list(range(n))
    task_rng(name, seed).shuffle(order)

    def count(fraction: float) -> int:
        k = round(n * fraction)
        return max(k, 1) if fraction > 0 and n >= 3 else k

    n_valid, n_test = count(valid_fraction), count(test_fraction)
    if n - n_valid - n_test < 1:
        raise ValueError(
            f"task {name!r}: {n} distinct example(s) are too few to split with "
            f"valid_fraction={valid_fraction}, test_fraction={test_fraction}; add data or "
            "use fractions of 0"
        )
    valid_ids, test_ids = order[:n_valid], order[n_valid : n_valid + n_test]
    train_ids = order[n_valid + n_test :]

    def flat(ids: list[int]) -> list[Example]:
        return [ex for i in ids for ex in groups[i]]

    return flat(train_ids), flat(valid_ids), flat(test_ids)


def _examples_from_pairs(pairs: Iterable[Sequence[str]], where: list[str] | None) -> list[Example]:
    """Validated Examples; `where[k]` names pair k in errors (default "pair k+1")."""
    examples: list[Example] = []
    for k, pair in enumerate(pairs):
        place = where[k] if where else f"pair {k + 1}"
        if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
            size = len(pair) if isinstance(pair, Sequence) and not isinstance(pair, str) else "?"
            raise ValueError(
                f"{place}: expected exactly 2 fields (source, target), got {size}: {pair!r}"
            )
        src, tgt = pair
        if not isinstance(src, str) or not isinstance(tgt, str):
            raise ValueError(f"{place}: source and target must be str, got {pair!r}")
        src, tgt = src.strip(), tgt.strip()
        if not src or not tgt:
            side = "source" if not src else "target"
            raise ValueError(f"{place}: the {side} is empty in {pair!r}")
        examples.append(Example(src, tgt))
    return examples


def task_from_pairs(
    pairs: Iterable[Sequence[str]],
    name: str = "my_pairs",
    level: str = "word",
    valid_fraction: float = 0.1,
    seed: int = 0,
    *,
    test_fraction: float = 0.1,
    shared_vocab: bool = False,
    vocab_size: int | None = None,
) -> Task:
    """A sequence-to-sequence Task from (source, target) string pairs.

    `level` "word" (whitespace), "char" or "bpe" (`vocab_size`, default 1000). Each pair must
    have exactly two non-empty strings; otherwise a ValueError names the pair's number
    (1-based). `shared_vocab=True` uses one tokenizer for both sides.
    """
    return _pairs_task(
        _examples_from_pairs(pairs, None), name, level, valid_fraction, seed,
        test_fraction=test_fraction, shared_vocab=shared_vocab, vocab_size=vocab_size,
    )  # fmt: skip


def _pairs_task(
    examples: list[Example],
    name: str,
    level: str,
    valid_fraction: float,
    seed: int,
    *,
    test_fraction: float,
    shared_vocab: bool,
    vocab_size: int | None,
) -> Task:
    _check_fractions(valid_fraction, test_fraction)
    tok_opts = _check_level(level, vocab_size)
    if not examples:
        raise ValueError(f"task {name!r}: no pairs given; need at least one (source, target)")
    by_source: dict[str, list[Example]] = {}
    for ex in examples:
        by_source.setdefault(ex.src, []).append(ex)
    splits = _split_groups(list(by_source.values()), valid_fraction, test_fraction, name, seed)
    options = dict(level=level, valid_fraction=valid_fraction, test_fraction=test_fraction,
                   shared_vocab=shared_vocab, **tok_opts)  # fmt: skip
    return Task.from_examples(
        name,
        "seq2seq",
        f"User sentence pairs ({len(examples)} pairs, {level} level).",
        splits,
        level=level,
        shared_vocab=shared_vocab,
        tokenizer_options=tok_opts,
        options=options,
        seed=seed,
        is_translation=True,
    )


def _read_text(path: str | os.PathLike[str], encoding: str) -> tuple[Path, str]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no file at {str(path)!r}")
    try:
        return path, path.read_text(encoding=encoding)
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{str(path)!r} is not valid {encoding} text ({err.reason} at byte {err.start}); "
            "pass encoding=... with the file's encoding"
        ) from err


def task_from_tsv(
    path: str | os.PathLike[str],
    name: str | None = None,
    level: str = "word",
    valid_fraction: float = 0.1,
    seed: int = 0,
    *,
    test_fraction: float = 0.1,
    shared_vocab: bool = False,
    vocab_size: int | None = None,
    skip_header: bool = False,
    encoding: str = "utf-8",
) -> Task:
    """A sequence-to-sequence Task from a file with one "source<TAB>target" pair a line.

    Blank lines are skipped; a line without exactly two non-empty tab-separated fields raises
    a ValueError naming its line number. `name` defaults to the file's stem.
    """
    path, content = _read_text(path, encoding)
    pairs: list[list[str]] = []
    numbers: list[int] = []
    for number, line in enumerate(content.splitlines(), start=1):
        if (skip_header and number == 1) or not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise ValueError(
                f"{path.name} line {number}: expected exactly 2 tab-separated fields "
                f"(source<TAB>target), got {len(fields)}: {line!r}"
            )
        pairs.append(fields)
        numbers.append(number)
    if not pairs:
        raise ValueError(f"{str(path)!r} holds no pairs (every line is blank)")
    where = [f"{path.name} line {number}" for number in numbers]
    return _pairs_task(
        _examples_from_pairs(pairs, where), name or path.stem, level, valid_fraction, seed,
        test_fraction=test_fraction, shared_vocab=shared_vocab, vocab_size=vocab_size,
    )  # fmt: skip


def _wrap(text: str, max_chars: int) -> list[str]:
    """Cut `text` into pieces of at most `max_chars`, at whitespace when there is some."""
    pieces: list[str] = []
    while len(text) > max_chars:
        cut = max(text.rfind(" ", 0, max_chars + 1), text.rfind("\n", 0, max_chars + 1))
        if cut <= 0:
            cut = max_chars
        pieces.append(text[:cut])
        text = text[cut:].lstrip(" \n")
    if text:
        pieces.append(text)
    return [p for p in pieces if p.strip()]


def task_from_text_file(
    path: str | os.PathLike[str],
    level: str = "char",
    name: str | None = None,
    valid_fraction: float = 0.1,
    seed: int = 0,
    *,
    test_fraction: float = 0.1,
    mode: str = "line",
    max_chars: int = 200,
    vocab_size: int | None = None,
    encoding: str = "utf-8",
) -> Task:
    """A language-model Task from a text file.

    `mode="line"`: every non-blank line is an example; `mode="chunk"`: the text (newlines
    kept) is cut into consecutive pieces. Either way pieces longer than `max_chars` are cut,
    at a space when possible, which bounds the sequence length. Identical pieces are kept
    together in one split.
    """
    if mode not in TEXT_MODES:
        raise ValueError(f"mode {mode!r} is not known; choose one of {TEXT_MODES}")
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
        raise ValueError(f"max_chars must be a positive integer, got {max_chars!r}")
    _check_fractions(valid_fraction, test_fraction)
    tok_opts = _check_level(level, vocab_size)
    path, content = _read_text(path, encoding)
    content = content.replace("\r\n", "\n")
    if mode == "line":
        pieces = [p for line in content.split("\n") for p in _wrap(line.strip(), max_chars)]
    else:
        pieces = _wrap(re.sub(r"\n{3,}", "\n\n", content.strip()), max_chars)
    if not pieces:
        raise ValueError(f"{str(path)!r} holds no text (empty or only whitespace)")
    name = name or path.stem
    groups: dict[str, list[Example]] = {}
    for piece in pieces:
        groups.setdefault(piece, []).append(Example("", piece))
    splits = _split_groups(list(groups.values()), valid_fraction, test_fraction, name, seed)
    options = dict(level=level, mode=mode, max_chars=max_chars, valid_fraction=valid_fraction,
                   test_fraction=test_fraction, **tok_opts)  # fmt: skip
    return Task.from_examples(
        name,
        "lm",
        f"Language modelling on {path.name} ({len(pieces)} {mode}s, {level} level).",
        splits,
        level=level,
        tokenizer_options=tok_opts,
        options=options,
        seed=seed,
    )
