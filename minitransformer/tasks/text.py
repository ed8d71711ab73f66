"""Generated text for next-token prediction (decoder-only language models).

- arithmetic_lm  lines such as "12+7=19" (character level): after "=", the model has to look
                 back at the operands to continue
- grammar_lm     sentences of a tiny English grammar with subject-verb agreement across a
                 relative clause, "the dog that chases the cats runs ." (word level): the verb
                 must agree with "dog", not with the nearer "cats"

Examples have `src=""` and `alignment=None`; every line is distinct, and no test line is in
training.
"""

from __future__ import annotations

import random

from .base import Example, Task
from .sampling import check_int, check_split_sizes, cut_splits, sample_unique, task_rng

ARITHMETIC_OPS = ("+", "-")


def arithmetic_lm_task(
    seed: int = 0,
    *,
    n_train: int = 3000,
    n_valid: int = 200,
    n_test: int = 200,
    max_digits: int = 2,
    ops: tuple[str, ...] = ("+",),
) -> Task:
    """Lines "a+b=c" (and "a-b=c" with c >= 0 if "-" is in `ops`), one character per token."""
    name = "arithmetic_lm"
    total = check_split_sizes(name, n_train, n_valid, n_test)
    check_int(f"{name}: max_digits", max_digits, minimum=1)
    ops = tuple(ops)
    if not ops or any(op not in ARITHMETIC_OPS for op in ops):
        raise ValueError(f"{name}: ops {ops!r} must be a non-empty subset of {ARITHMETIC_OPS}")
    high = 10**max_digits - 1

    def draw(rng: random.Random) -> str:
        op = rng.choice(ops)
        a, b = rng.randint(0, high), rng.randint(0, high)
        if op == "-":
            a, b = max(a, b), min(a, b)
            return f"{a}-{b}={a - b}"
        return f"{a}+{b}={a + b}"

    per_op = {"+": (high + 1) ** 2, "-": (high + 1) * (high + 2) // 2}
    lines = sample_unique(
        task_rng(name, seed), draw, lambda s: s, total, space=sum(per_op[o] for o in ops),
        what=f"task {name!r}",
    )  # fmt: skip
    examples = [Example("", line) for line in lines]
    options = dict(n_train=n_train, n_valid=n_valid, n_test=n_test, max_digits=max_digits,
                   ops=ops)  # fmt: skip
    return Task.from_examples(
        name,
        "lm",
        f"Continue arithmetic lines like '12+7=19' (operands up to {max_digits} digits, "
        f"ops {' '.join(ops)}); character-level language modelling.",
        cut_splits(examples, n_train, n_valid, n_test),
        level="char",
        options=options,
        seed=seed,
    )


DETERMINERS = {"sg": ("the", "a", "every"), "pl": ("the", "some", "two")}
NOUNS = {
    "sg": ("cat", "dog", "bird", "child", "teacher", "farmer"),
    "pl": ("cats", "dogs", "birds", "children", "teachers", "farmers"),
}
ADJECTIVES = ("small", "big", "old", "happy", "quiet")
INTRANSITIVE = {"sg": ("sleeps", "runs", "sings", "waits"), "pl": ("sleep", "run", "sing", "wait")}
TRANSITIVE = {"sg": ("sees", "chases", "likes", "helps"), "pl": ("see", "chase", "like", "help")}


def _noun_phrase(rng: random.Random, number: str, p_adj: float) -> list[str]:
    words = [rng.choice(DETERMINERS[number])]
    if rng.random() < p_adj:
        words.append(rng.choice(ADJECTIVES))
    words.append(rng.choice(NOUNS[number]))
    return words


def _verb_phrase(rng: random.Random, number: str, p_adj: float) -> list[str]:
    if rng.random() < 0.5:
        return [rng.choice(INTRANSITIVE[number])]
    obj_number = rng.choice(("sg", "pl"))
    return [rng.choice(TRANSITIVE[number]), *_noun_phrase(rng, obj_number, p_adj)]


def grammar_sentence(rng: random.Random, p_adj: float = 0.3, p_relative: float = 0.4) -> str:
    """One sentence: subject (with an optional "that ..." relative clause), verb phrase, "."."""
    number = rng.choice(("sg", "pl"))
    words = _noun_phrase(rng, number, p_adj)
    if rng.random() < p_relative:
        words += ["that", *_verb_phrase(rng, number, p_adj)]
    words += _verb_phrase(rng, number, p_adj)
    return " ".join([*words, "."])


def grammar_lm_task(
    seed: int = 0,
    *,
    n_train: int = 3000,
    n_valid: int = 200,
    n_test: int = 200,
    p_adjective: float = 0.3,
    p_relative: float = 0.4,
) -> Task:
    """Sentences of a small agreement grammar, word level: "the dog that chases the cats runs ."."""
    name = "grammar_lm"
    total = check_split_sizes(name, n_train, n_valid, n_test)
    for field, p in (("p_adjective", p_adjective), ("p_relative", p_relative)):
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
            raise ValueError(f"{name}: {field} must be a probability in [0, 1], got {p!r}")
    sentences = sample_unique(
        task_rng(name, seed), lambda r: grammar_sentence(r, p_adjective, p_relative),
        lambda s: s, total, space=10**9, what=f"task {name!r}",
    )  # fmt: skip
    examples = [Example("", s) for s in sentences]
    options = dict(n_train=n_train, n_valid=n_valid, n_test=n_test, p_adjective=p_adjective,
                   p_relative=p_relative)  # fmt: skip
    return Task.from_examples(
        name,
        "lm",
        "Sentences of a tiny English grammar with subject-verb agreement across relative "
        "clauses; word-level language modelling.",
        cut_splits(examples, n_train, n_valid, n_test),
        level="word",
        options=options,
        seed=seed,
    )
