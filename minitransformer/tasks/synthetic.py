"""Synthetic sequence tasks with known gold alignments: copy, reverse, sort, addition.

Sequences are made of single-character symbols. `level="char"` writes them as "cab" (one
token per character); `level="word"` writes "c a b" (one token per word). Token positions, and
so the alignments, are the same at both levels. Alignments are (target_index, source_index).

- copy      "cab" -> "cab"      target i <- source i
- reverse   "cab" -> "bac"      target i <- source n-1-i
- sort      "cab" -> "abc"      target i <- the source position of that symbol (symbols are
            distinct by default; with repeats the stable order is one valid alignment)
- addition  "27+45" -> "72"     each answer digit <- the two operand digits of its place value
            (a leading carry digit <- the operand digits of the place below, which produced it);
            `reverse_answer=True` writes the answer least-significant digit first ("27")
"""

from __future__ import annotations

import random
from math import perm

from .base import Example, Task
from .sampling import check_int, check_split_sizes, cut_splits, sample_unique, task_rng

LETTERS = "abcdefghijklmnopqrstuvwxyz"
SYMBOL_LEVELS = ("char", "word")


def _check_level(task: str, level: str) -> str:
    if level not in SYMBOL_LEVELS:
        raise ValueError(f"{task}: level {level!r} is not known; choose one of {SYMBOL_LEVELS}")
    return level


def _check_alphabet(task: str, alphabet: str) -> str:
    if not isinstance(alphabet, str) or len(alphabet) < 2:
        raise ValueError(f"{task}: alphabet must be a str of at least 2 symbols, got {alphabet!r}")
    if len(set(alphabet)) != len(alphabet) or any(ch.isspace() for ch in alphabet):
        raise ValueError(
            f"{task}: alphabet symbols must be distinct and not whitespace, got {alphabet!r}"
        )
    return alphabet


def _check_lengths(task: str, min_len: int, max_len: int) -> None:
    check_int(f"{task}: min_len", min_len, minimum=1)
    check_int(f"{task}: max_len", max_len, minimum=1)
    if min_len > max_len:
        raise ValueError(f"{task}: min_len ({min_len}) must be <= max_len ({max_len})")


def _join(symbols: list[str] | str, level: str) -> str:
    return " ".join(symbols) if level == "word" else "".join(symbols)


def _symbol_task(
    name: str,
    description: str,
    transform: str,
    *,
    seed: int,
    n_train: int,
    n_valid: int,
    n_test: int,
    min_len: int,
    max_len: int,
    alphabet: str,
    level: str,
    distinct: bool,
    options: dict,
) -> Task:
    total = check_split_sizes(name, n_train, n_valid, n_test)
    _check_lengths(name, min_len, max_len)
    _check_alphabet(name, alphabet)
    _check_level(name, level)
    a = len(alphabet)
    if distinct:
        if max_len > a:
            raise ValueError(
                f"{name}: max_len ({max_len}) cannot exceed the alphabet size ({a}) "
                "when symbols are distinct"
            )
        space = sum(perm(a, n) for n in range(min_len, max_len + 1))
    else:
        space = sum(a**n for n in range(min_len, max_len + 1))

    def draw(rng: random.Random) -> str:
        n = rng.randint(min_len, max_len)
        if distinct:
            return "".join(rng.sample(alphabet, n))
        return "".join(rng.choice(alphabet) for _ in range(n))

    rng = task_rng(name, seed)
    sources = sample_unique(rng, draw, lambda s: s, total, space=space, what=f"task {name!r}")
    rank = {ch: k for k, ch in enumerate(alphabet)}
    examples = []
    for src in sources:
        n = len(src)
        if transform == "copy":
            order = list(range(n))
        elif transform == "reverse":
            order = list(range(n - 1, -1, -1))
        else:  # sort: stable by alphabet position
            order = sorted(range(n), key=lambda j: rank[src[j]])
        tgt = "".join(src[j] for j in order)
        alignment = tuple((i, j) for i, j in enumerate(order))
        examples.append(Example(_join(src, level), _join(tgt, level), alignment))
    return Task.from_examples(
        name,
        "seq2seq",
        description,
        cut_splits(examples, n_train, n_valid, n_test),
        level=level,
        shared_vocab=True,
        options=options,
        seed=seed,
    )


def copy_task(
    seed: int = 0,
    *,
    n_train: int = 2000,
    n_valid: int = 200,
    n_test: int = 200,
    min_len: int = 2,
    max_len: int = 12,
    alphabet: str = LETTERS,
    level: str = "char",
) -> Task:
    """Copy a random symbol string: "cab" -> "cab". Gold alignment: target i <- source i."""
    options = dict(n_train=n_train, n_valid=n_valid, n_test=n_test, min_len=min_len,
                   max_len=max_len, alphabet=alphabet, level=level)  # fmt: skip
    return _symbol_task(
        "copy",
        f"Copy a string of {min_len}-{max_len} symbols from {alphabet[0]}..{alphabet[-1]}; "
        "the cross-attention should be a diagonal.",
        "copy",
        seed=seed,
        distinct=False,
        options=options,
        **options,
    )


def reverse_task(
    seed: int = 0,
    *,
    n_train: int = 2000,
    n_valid: int = 200,
    n_test: int = 200,
    min_len: int = 2,
    max_len: int = 12,
    alphabet: str = LETTERS,
    level: str = "char",
) -> Task:
    """Reverse a symbol string: "cab" -> "bac". Gold alignment: target i <- source n-1-i."""
    options = dict(n_train=n_train, n_valid=n_valid, n_test=n_test, min_len=min_len,
                   max_len=max_len, alphabet=alphabet, level=level)  # fmt: skip
    return _symbol_task(
        "reverse",
        f"Reverse a string of {min_len}-{max_len} symbols; the cross-attention should be an "
        "anti-diagonal.",
        "reverse",
        seed=seed,
        distinct=False,
        options=options,
        **options,
    )


def sort_task(
    seed: int = 0,
    *,
    n_train: int = 2000,
    n_valid: int = 200,
    n_test: int = 200,
    min_len: int = 2,
    max_len: int = 10,
    alphabet: str = LETTERS,
    level: str = "char",
    distinct: bool = True,
) -> Task:
    """Sort symbols by alphabet order: "cab" -> "abc".

    Gold alignment: target i <- the source position of the i-th smallest symbol. Symbols are
    distinct by default, so the alignment is unique; with `distinct=False` repeats are
    allowed and the stable order is one of several valid alignments.
    """
    options = dict(n_train=n_train, n_valid=n_valid, n_test=n_test, min_len=min_len,
                   max_len=max_len, alphabet=alphabet, level=level, distinct=distinct)  # fmt: skip
    kind = "distinct" if distinct else "possibly repeated"
    return _symbol_task(
        "sort",
        f"Sort {min_len}-{max_len} {kind} symbols into alphabet order; each output symbol "
        "should attend to where it sat in the input (a permutation matrix).",
        "sort",
        seed=seed,
        options=options,
        **options,
    )


def _number_range(min_digits: int, max_digits: int) -> tuple[int, int]:
    low = 0 if min_digits == 1 else 10 ** (min_digits - 1)
    return low, 10**max_digits - 1


def addition_alignment(a: str, b: str, answer: str, reverse_answer: bool) -> tuple:
    """Alignment of "a+b" -> answer: answer digit of place p <- operand digits of place p.

    Place p of operand `a` is source index len(a)-1-p; of `b`, len(a)+1+len(b)-1-p. A carry
    digit beyond the longest operand aligns to the operand digits of the place below.
    """
    longest = max(len(a), len(b))
    pairs: list[tuple[int, int]] = []
    for pos in range(len(answer)):
        place = pos if reverse_answer else len(answer) - 1 - pos
        source_place = min(place, longest - 1)
        if source_place < len(a):
            pairs.append((pos, len(a) - 1 - source_place))
        if source_place < len(b):
            pairs.append((pos, len(a) + len(b) - source_place))
    return tuple(sorted(pairs))


def addition_task(
    seed: int = 0,
    *,
    n_train: int = 3000,
    n_valid: int = 200,
    n_test: int = 200,
    min_digits: int = 1,
    max_digits: int = 2,
    reverse_answer: bool = False,
    level: str = "char",
) -> Task:
    """Add two numbers: "27+45" -> "72" (carries included), one token per digit.

    Gold alignment: each answer digit <- the two operand digits of the same place value (the
    digits that, with the carry, decide it). `reverse_answer=True` writes the answer
    least-significant digit first, which is easier to learn left to right.
    """
    name = "addition"
    total = check_split_sizes(name, n_train, n_valid, n_test)
    check_int(f"{name}: min_digits", min_digits, minimum=1)
    check_int(f"{name}: max_digits", max_digits, minimum=1)
    if min_digits > max_digits:
        raise ValueError(f"{name}: min_digits ({min_digits}) must be <= max_digits ({max_digits})")
    _check_level(name, level)
    low, high = _number_range(min_digits, max_digits)

    def draw(rng: random.Random) -> tuple[int, int]:
        return rng.randint(low, high), rng.randint(low, high)

    rng = task_rng(name, seed)
    pairs = sample_unique(
        rng, draw, lambda p: f"{p[0]}+{p[1]}", total, space=(high - low + 1) ** 2,
        what=f"task {name!r}",
    )  # fmt: skip
    examples = []
    for x, y in pairs:
        a, b, answer = str(x), str(y), str(x + y)
        shown = answer[::-1] if reverse_answer else answer
        alignment = addition_alignment(a, b, answer, reverse_answer)
        examples.append(Example(_join(f"{a}+{b}", level), _join(shown, level), alignment))
    order = "least-significant digit first" if reverse_answer else "usual order"
    options = dict(n_train=n_train, n_valid=n_valid, n_test=n_test, min_digits=min_digits,
                   max_digits=max_digits, reverse_answer=reverse_answer, level=level)  # fmt: skip
    return Task.from_examples(
        name,
        "seq2seq",
        f"Add two {min_digits}-{max_digits} digit numbers, answer in {order}; each answer "
        "digit should attend to the two operand digits of its place value.",
        cut_splits(examples, n_train, n_valid, n_test),
        level=level,
        shared_vocab=True,
        options=options,
        seed=seed,
    )
