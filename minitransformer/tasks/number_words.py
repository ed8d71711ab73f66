"""Number words 0..999 in English, German and French, one word per token, with word roles.

Each function returns a list of `(word, roles)`; a role names which part of the number a
word expresses: "h" (hundreds digit), "hundred", "t" (tens), "u" (units), "teen" (10..19 as
one English word), "zero". A target word aligns to every source word that shares a role, which
gives the gold word alignment (words with no role, such as German "und" or French "et", align
to nothing).

German writes units before tens ("ein und zwanzig" for 21, spelled einundzwanzig) - the
reordering cross-attention has to learn. French follows the modern rules written without
hyphens: "vingt et un" (21), "soixante et onze" (71), "soixante douze" (72), "quatre vingts"
(80, with s when final), "quatre vingt un" (81, no "et"), "quatre vingt onze" (91),
"cent" (100), "deux cents" (200), "deux cent un" (201).
"""

from __future__ import annotations

Words = list[tuple[str, frozenset[str]]]

H, HUNDRED, T, U, TEEN, ZERO = "h", "hundred", "t", "u", "teen", "zero"

EN_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
EN_TEENS = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
            "seventeen", "eighteen", "nineteen"]  # fmt: skip
EN_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]

DE_UNITS = ["null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"]
DE_TEENS = ["zehn", "elf", "zwölf", "dreizehn", "vierzehn", "fünfzehn", "sechzehn",
            "siebzehn", "achtzehn", "neunzehn"]  # fmt: skip
DE_TENS = ["", "", "zwanzig", "dreißig", "vierzig", "fünfzig", "sechzig", "siebzig",
           "achtzig", "neunzig"]  # fmt: skip

FR_UNITS = ["zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"]
FR_TEENS = ["dix", "onze", "douze", "treize", "quatorze", "quinze", "seize"]  # 10..16
FR_TENS = ["", "", "vingt", "trente", "quarante", "cinquante", "soixante"]  # 20..60

MAX_NUMBER = 999


def _w(word: str, *roles: str) -> tuple[str, frozenset[str]]:
    return word, frozenset(roles)


def _check(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_NUMBER:
        raise ValueError(f"number must be an integer in 0..{MAX_NUMBER}, got {n!r}")


def english_words(n: int) -> Words:
    """English words, "three hundred twenty one" style (no "and"); 0 is "zero"."""
    _check(n)
    hundreds, rest = divmod(n, 100)
    out: Words = []
    if hundreds:
        out += [_w(EN_UNITS[hundreds], H), _w("hundred", HUNDRED)]
    if n == 0:
        out.append(_w("zero", ZERO))
    elif 0 < rest < 10:
        out.append(_w(EN_UNITS[rest], U))
    elif 10 <= rest < 20:
        out.append(_w(EN_TEENS[rest - 10], TEEN))
    elif rest >= 20:
        tens, units = divmod(rest, 10)
        out.append(_w(EN_TENS[tens], T))
        if units:
            out.append(_w(EN_UNITS[units], U))
    return out


def german_words(n: int) -> Words:
    """German words, "drei hundert ein und zwanzig" style (einundzwanzig split into words)."""
    _check(n)
    hundreds, rest = divmod(n, 100)
    out: Words = []
    if hundreds:
        digit = "ein" if hundreds == 1 else DE_UNITS[hundreds]
        out += [_w(digit, H), _w("hundert", HUNDRED)]
    if n == 0:
        out.append(_w("null", ZERO))
    elif 0 < rest < 10:
        out.append(_w(DE_UNITS[rest], U))  # "eins" when standing alone at the end
    elif 10 <= rest < 20:
        out.append(_w(DE_TEENS[rest - 10], TEEN))
    elif rest >= 20:
        tens, units = divmod(rest, 10)
        if units:
            unit = "ein" if units == 1 else DE_UNITS[units]
            out += [_w(unit, U), _w("und")]
        out.append(_w(DE_TENS[tens], T))
    return out


def french_words(n: int) -> Words:
    """Modern French number words, hyphens written as spaces ("quatre vingt dix neuf")."""
    _check(n)
    hundreds, rest = divmod(n, 100)
    out: Words = []
    if hundreds == 1:
        out.append(_w("cent", H, HUNDRED))
    elif hundreds > 1:
        out += [_w(FR_UNITS[hundreds], H), _w("cents" if rest == 0 else "cent", HUNDRED)]
    if n == 0:
        out.append(_w("zéro", ZERO))
    elif rest:
        out += _french_below_100(rest)
    return out


def _french_below_100(r: int) -> Words:
    tens, units = divmod(r, 10)
    if r < 10:
        return [_w(FR_UNITS[r], U)]
    if r <= 16:
        return [_w(FR_TEENS[r - 10], TEEN)]
    if r < 20:  # dix sept, dix huit, dix neuf
        return [_w("dix", TEEN), _w(FR_UNITS[units], TEEN)]
    if r < 70:
        head = [_w(FR_TENS[tens], T)]
        if units == 1:
            return [*head, _w("et"), _w("un", U)]
        return head + ([_w(FR_UNITS[units], U)] if units else [])
    if r < 80:  # soixante + 10..19
        head = [_w("soixante", T)]
        if units == 1:
            return [*head, _w("et"), _w("onze", T, U)]
        return head + _french_ten_to_nineteen(units)
    # 80..99: quatre vingt(s) ...
    if r == 80:
        return [_w("quatre", T), _w("vingts", T)]
    head = [_w("quatre", T), _w("vingt", T)]
    if r < 90:
        return [*head, _w(FR_UNITS[units], U)]
    return head + _french_ten_to_nineteen(units)


def _french_ten_to_nineteen(units: int) -> Words:
    """10 + units inside 70..79 / 90..99: the "dix"/"onze".. words carry the extra ten."""
    if units == 0:
        return [_w("dix", T)]
    if units <= 6:
        return [_w(FR_TEENS[units], T, U)]
    return [_w("dix", T), _w(FR_UNITS[units], U)]


def align_words(target: Words, source: Words) -> tuple[tuple[int, int], ...]:
    """(target_index, source_index) pairs of words that share a role."""
    return tuple(
        (i, j)
        for i, (_, t_roles) in enumerate(target)
        for j, (_, s_roles) in enumerate(source)
        if t_roles & s_roles
    )


def text(words: Words) -> str:
    """The words joined by single spaces."""
    return " ".join(word for word, _ in words)
