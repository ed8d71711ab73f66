"""Toy translation tasks with known word alignments and real reordering (word-level tokens).

- numbers_en_de  "three hundred twenty one" -> "drei hundert ein und zwanzig"
                 (units before tens: the word-order swap cross-attention must learn)
- numbers_en_fr  "seventy one" -> "soixante et onze", "ninety one" -> "quatre vingt onze"
- dates          "march 21 2024" or "21 march 2024" -> "2024 - 03 - 21"

Numbers 0..max_number are shuffled once and cut into disjoint splits, so every test number is
absent from training. Source and target have separate word vocabularies.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

from .base import Example, Task
from .number_words import MAX_NUMBER, Words, align_words, english_words, text
from .number_words import french_words as _fr
from .number_words import german_words as _de
from .sampling import check_int, check_split_sizes, cut_splits, sample_unique, task_rng

MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december"]  # fmt: skip
DATE_ORDERS = ("mdy", "dmy")


def _numbers_task(
    name: str,
    to_words: Callable[[int], Words],
    language: str,
    *,
    seed: int,
    n_valid: int,
    n_test: int,
    n_train: int | None,
    max_number: int,
) -> Task:
    check_int(f"{name}: max_number", max_number, minimum=9)
    if max_number > MAX_NUMBER:
        raise ValueError(f"{name}: max_number must be <= {MAX_NUMBER}, got {max_number!r}")
    check_int(f"{name}: n_valid", n_valid, minimum=0)
    check_int(f"{name}: n_test", n_test, minimum=0)
    rest = max_number + 1 - n_valid - n_test
    n_train = rest if n_train is None else n_train
    check_split_sizes(name, n_train, n_valid, n_test)
    if n_train > rest:
        raise ValueError(
            f"{name}: n_train={n_train} + n_valid={n_valid} + n_test={n_test} exceeds the "
            f"{max_number + 1} numbers 0..{max_number}"
        )
    numbers = list(range(max_number + 1))
    task_rng(name, seed).shuffle(numbers)
    examples = []
    for n in numbers:
        source, target = english_words(n), to_words(n)
        examples.append(Example(text(source), text(target), align_words(target, source)))
    options = dict(n_train=n_train, n_valid=n_valid, n_test=n_test, max_number=max_number)
    return Task.from_examples(
        name,
        "seq2seq",
        f"Translate English number words 0..{max_number} into {language}; gold word "
        "alignments included, test numbers never seen in training.",
        cut_splits(examples, n_train, n_valid, n_test),
        level="word",
        shared_vocab=False,
        options=options,
        seed=seed,
        is_translation=True,
    )


def numbers_en_de_task(
    seed: int = 0,
    *,
    n_train: int | None = None,
    n_valid: int = 100,
    n_test: int = 100,
    max_number: int = 999,
) -> Task:
    """English -> German number words ("twenty one" -> "ein und zwanzig").

    `n_train=None` takes every number not in valid/test.
    """
    return _numbers_task(
        "numbers_en_de", _de, "German (units before tens)", seed=seed, n_train=n_train,
        n_valid=n_valid, n_test=n_test, max_number=max_number,
    )  # fmt: skip


def numbers_en_fr_task(
    seed: int = 0,
    *,
    n_train: int | None = None,
    n_valid: int = 100,
    n_test: int = 100,
    max_number: int = 999,
) -> Task:
    """English -> French number words ("ninety one" -> "quatre vingt onze").

    `n_train=None` takes every number not in valid/test.
    """
    return _numbers_task(
        "numbers_en_fr", _fr, "French (vingt et un, soixante et onze, quatre vingts)",
        seed=seed, n_train=n_train, n_valid=n_valid, n_test=n_test, max_number=max_number,
    )  # fmt: skip


def date_example(day: dt.date, order: str) -> Example:
    """One dates example: "march 21 2024" (mdy) or "21 march 2024" (dmy) -> "2024 - 03 - 21".

    Target tokens: year, "-", month, "-", day; the dashes align to nothing.
    """
    month, d, year = MONTHS[day.month - 1], str(day.day), str(day.year)
    if order == "mdy":
        source, pos = [month, d, year], {"m": 0, "d": 1, "y": 2}
    elif order == "dmy":
        source, pos = [d, month, year], {"d": 0, "m": 1, "y": 2}
    else:
        raise ValueError(f"date order {order!r} is not known; choose one of {DATE_ORDERS}")
    target = [year, "-", f"{day.month:02d}", "-", f"{day.day:02d}"]
    alignment = ((0, pos["y"]), (2, pos["m"]), (4, pos["d"]))
    return Example(" ".join(source), " ".join(target), alignment)


def dates_task(
    seed: int = 0,
    *,
    n_train: int = 3000,
    n_valid: int = 200,
    n_test: int = 200,
    first_year: int = 1950,
    last_year: int = 2049,
    orders: tuple[str, ...] = DATE_ORDERS,
) -> Task:
    """Normalise written dates to ISO order: "march 21 2024" -> "2024 - 03 - 21".

    Each source is written in one of `orders` ("mdy": month day year, "dmy": day month year),
    so the month's position moves and attention has to find it. Word-level tokens: the year is
    one token, month and day become two-digit tokens. No test date appears in training.
    """
    name = "dates"
    total = check_split_sizes(name, n_train, n_valid, n_test)
    check_int(f"{name}: first_year", first_year, minimum=1)
    check_int(f"{name}: last_year", last_year, minimum=1)
    if not first_year <= last_year <= 9999:
        raise ValueError(
            f"{name}: need first_year <= last_year <= 9999, got {first_year}..{last_year}"
        )
    orders = tuple(orders)
    bad = [o for o in orders if o not in DATE_ORDERS]
    if not orders or bad:
        raise ValueError(f"{name}: orders {orders!r} must be a non-empty subset of {DATE_ORDERS}")
    start = dt.date(first_year, 1, 1).toordinal()
    end = dt.date(last_year, 12, 31).toordinal()

    def draw(rng: random.Random) -> tuple[dt.date, str]:
        return dt.date.fromordinal(rng.randint(start, end)), rng.choice(orders)

    rng = task_rng(name, seed)
    # Distinct by calendar date, so a test date is not in training in any written order.
    drawn = sample_unique(
        rng, draw, lambda item: item[0].isoformat(), total, space=end - start + 1,
        what=f"task {name!r}",
    )  # fmt: skip
    examples = [date_example(day, order) for day, order in drawn]
    options = dict(n_train=n_train, n_valid=n_valid, n_test=n_test, first_year=first_year,
                   last_year=last_year, orders=orders)  # fmt: skip
    return Task.from_examples(
        name,
        "seq2seq",
        f"Rewrite English dates {first_year}-{last_year} ({'/'.join(orders)} order) as "
        "year - month - day; year, month and day align to their source words.",
        cut_splits(examples, n_train, n_valid, n_test),
        level="word",
        shared_vocab=False,
        options=options,
        seed=seed,
        is_translation=True,
    )
