"""Numbers as people write them, rewritten as digits before any grammar reads the sentence.

English: "twenty" -> 20, "one hundred and fifty" -> 150, "twenty-five" -> 25, "two and a half"
-> 2.5, "a thousand" -> 1000, "3 million" -> 3000000, "1.5k" -> 1500, "two cents" -> "0.02
usdc", "fifty cents" -> "0.5 usdc". Chinese (Simplified and Traditional): 一百 -> 100, 两千五
-> 2500, 1.5万 -> 15000, 三百零五 -> 305, 十五 -> 15, 百分之二十五 -> 25%, 一半 -> half,
四分之一 -> 0.25 (as a share). Every value is a ``Decimal`` built from integers: never a float.

``words_to_digits`` and ``chinese_to_digits`` work on a lower-cased sentence and leave anything
that is not a number untouched, so the grammar after them still refuses what it cannot read.
"""

from __future__ import annotations

import re
from decimal import Decimal

_UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_WORD = "|".join(sorted([*_UNITS, *_TENS, *_SCALES], key=len, reverse=True))
# a run of number words: "one hundred and twenty-five", "a thousand", "two and a half"
_RUN = re.compile(
    rf"\b(?:an?\s+(?=(?:hundred|thousand|million|billion)\b))?(?:{_WORD})"
    rf"(?:(?:\s+and\s+|\s+|-)(?:{_WORD}))*(?:\s+and\s+a\s+half)?\b"
    r"(?!\s+(?:quarters?|halves|half|thirds?|fifths?|tenths?)\b)"
)
# digits with a scale word or suffix: "1.5k", "2 thousand", "3m", "1.2 million"
_SCALED = re.compile(
    r"(?<![\w.,])(\d+(?:\.\d+)?)(?:\s*(k|bn|thousand|million|billion)\b|(m)(?=\s+(?!min|sec|hour)[a-z$]))"
)
_CENTS = re.compile(r"(?<![\w.])(\d+)\s*(?:cents?|¢)(?:\s+(?:of|in)\s+usdc)?(?!\w)")


def _run_value(text: str) -> Decimal | None:
    """The value of a run of English number words, or None if it is not a well-formed number."""
    half = text.endswith("and a half")
    words = re.split(r"[\s-]+", text.removesuffix("and a half").strip())
    words = [w for w in words if w != "and"]
    if words and words[0] in ("a", "an"):
        words[0] = "one"
    total, current, last, last_scale = 0, 0, None, 0
    for word in words:
        if word in _UNITS or word in _TENS:
            value = _UNITS.get(word, _TENS.get(word, 0))
            if last in ("unit", "teen") or (last == "tens" and value >= 10):
                return None  # "twenty thirty", "five six": a list, not one number
            current += value
            last = "tens" if word in _TENS else ("teen" if value >= 10 else "unit")
        elif word in _SCALES:
            scale = _SCALES[word]
            if last is None or (last == "scale" and not last_scale == 100 < scale):
                return None  # "thousand million", "hundred hundred"; "hundred thousand" is one
            if scale == 100:
                current = max(current, 1) * 100
            else:
                total += max(current, 1) * scale
                current = 0
            last, last_scale = "scale", scale
        else:
            return None
    whole = Decimal(total + current)
    return whole + Decimal("0.5") if half else whole


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def words_to_digits(s: str) -> str:
    """English number words and scaled digits as plain digits (see the module doc)."""

    def run(m: re.Match[str]) -> str:
        value = _run_value(m.group(0))
        return m.group(0) if value is None else _plain(value)

    def scaled(m: re.Match[str]) -> str:
        factor = {"k": 1_000, "thousand": 1_000, "m": 1_000_000, "million": 1_000_000}
        factor |= {"bn": 1_000_000_000, "billion": 1_000_000_000}
        return _plain(Decimal(m.group(1)) * factor[m.group(2) or m.group(3)])

    s = _RUN.sub(run, s)
    s = re.sub(r"\bhalf an hour\b", "30 minutes", s)
    s = re.sub(r"\bhalf (?:a|one) (percent|per cent|%)", r"0.5 \1", s)
    s = re.sub(r"\bhalf an? (?!hour|minute|second|day|week)(?=[a-z])", "0.5 ", s)
    s = re.sub(r"\bhalf a minute\b", "30 seconds", s)
    s = re.sub(r"\ban? (hour|minute|day|week|second)\b", r"1 \1", s)
    s = _SCALED.sub(scaled, s)
    s = _CENTS.sub(lambda m: f"{_plain(Decimal(m.group(1)) / 100)} usdc", s)
    return s


# ---- Chinese ----------------------------------------------------------------------------------
_ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5}
_ZH_DIGITS |= {"六": 6, "七": 7, "八": 8, "九": 9}
_ZH_SMALL = {"十": 10, "百": 100, "千": 1_000}
_ZH_BIG = {"万": 10_000, "萬": 10_000, "亿": 100_000_000, "億": 100_000_000}
_ZH_CHARS = "".join([*_ZH_DIGITS, *_ZH_SMALL, *_ZH_BIG])
_ZH_RUN = re.compile(rf"[{_ZH_CHARS}]+")
_ZH_SCALED = re.compile(r"(\d+(?:\.\d+)?)\s*([万萬亿億千百])")


def zh_number(text: str) -> Decimal | None:
    """The value of a Chinese numeral (一百, 两千五, 三百零五, 十五, 一万二), or None."""
    if not text or any(c not in _ZH_CHARS for c in text):
        return None
    total, section, digit = 0, 0, None
    last_scale = 1
    for i, char in enumerate(text):
        if char in _ZH_DIGITS:
            if digit is not None and text[i - 1] != "零":
                return None  # "一二": digits in a row are not one numeral
            digit = _ZH_DIGITS[char]
        elif char in _ZH_SMALL:
            scale = _ZH_SMALL[char]
            section += (1 if digit is None else digit) * scale
            digit, last_scale = None, scale
        else:
            big = _ZH_BIG[char]
            section += digit or 0
            total = (total + section) * big if total < big else total + section * big
            section, digit, last_scale = 0, None, big
    if digit is not None:
        # 两千五 = 2500: a trailing digit after a scale, with no 零, is one step below it
        tail = "零" not in text and last_scale >= 100 and text[-2] in [*_ZH_SMALL, *_ZH_BIG]
        section += digit * (last_scale // 10 if tail else 1)
    return Decimal(total + section)


def chinese_to_digits(s: str) -> str:
    """Chinese numerals and shares as digits: 一百 -> 100, 1.5万 -> 15000, 百分之二十五 -> 25%,
    四分之一 -> 25%, 一半 -> half (a share), 半个 -> 0.5 (an amount)."""

    def fraction(m: re.Match[str]) -> str:
        den, num = zh_number(m.group(1)), zh_number(m.group(2))
        if not den or num is None or num > den:
            return m.group(0)
        return f"{_plain(num * 100 / den)}%"

    def percent(m: re.Match[str]) -> str:
        value = zh_number(m.group(1)) if not m.group(1)[0].isdigit() else Decimal(m.group(1))
        return m.group(0) if value is None else f"{_plain(value)}%"

    def scaled(m: re.Match[str]) -> str:
        factor = {"万": 10_000, "萬": 10_000, "亿": 10**8, "億": 10**8, "千": 1_000, "百": 100}
        return _plain(Decimal(m.group(1)) * factor[m.group(2)])

    def run(m: re.Match[str]) -> str:
        value = zh_number(m.group(0))
        return m.group(0) if value is None else f" {_plain(value)} "

    s = re.sub(rf"([{_ZH_CHARS}]+)分之([{_ZH_CHARS}]+)", fraction, s)
    s = re.sub(rf"百分之\s*(\d+(?:\.\d+)?|[{_ZH_CHARS}]+)", percent, s)
    s = re.sub(r"一半|一半儿|半数", " half ", s)
    s = re.sub(r"(?<![\d.])半(?=个|個|枚)", " 0.5 ", s)
    s = _ZH_SCALED.sub(scaled, s)
    s = _ZH_RUN.sub(run, s)
    return s
