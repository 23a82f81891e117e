"""Page text without downloads: English words from Debian's word list, Devanagari syllables from Unicode.

* Latin script: words from a system word list (Debian's ``wamerican`` package installs
  ``/usr/share/dict/words``); only lowercase ASCII words of 2-10 letters are kept. Without a
  word list, pronounceable pseudo-words are composed from consonant-vowel syllables.
* Devanagari: valid aksharas composed from Unicode code points: an optional conjunct
  (consonant + virama + consonant), a consonant, an optional dependent vowel sign, an optional
  anusvara / visarga; word-initial independent vowels; the danda ``।`` ends sentences.

Every function takes a :class:`numpy.random.Generator`, so a page's text is reproducible from its seed.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

Script = Literal["latin", "devanagari"]

#: system word lists tried in order (Debian: wamerican, wbritish, ...)
WORD_LISTS: tuple[str, ...] = (
    "/usr/share/dict/words",
    "/usr/share/dict/american-english",
    "/usr/share/dict/british-english",
)

VIRAMA = "\u094d"
ANUSVARA = "\u0902"
VISARGA = "\u0903"
DANDA = "\u0964"
#: consonants with rough Sanskrit text frequencies (common ones drawn more often)
CONSONANTS: dict[str, float] = {
    "क": 6, "ख": 1, "ग": 2, "घ": 0.5, "च": 2, "छ": 0.5, "ज": 2, "ट": 1, "ठ": 0.4, "ड": 0.6, "ण": 1, "त": 8, "थ": 1, "द": 4, "ध": 2, "न": 7, "प": 4, "फ": 0.3, "ब": 1, "भ": 2,
    "म": 5, "य": 5, "र": 7, "ल": 2, "व": 5, "श": 2, "ष": 2, "स": 6, "ह": 3,
}
#: conjuncts (C1 + virama + C2) are drawn from these members: the clusters Sanskrit uses most (kya, pra, tva, sna, ...)
CONJUNCT_FIRST: tuple[str, ...] = ("क", "त", "द", "न", "प", "म", "स", "श", "ग", "ज", "ब", "भ", "ध")
CONJUNCT_SECOND: tuple[str, ...] = ("य", "र", "व", "न", "म")
#: dependent vowel signs (matras) with rough frequencies; the inherent vowel 'a' has no sign
VOWEL_SIGNS: dict[str, float] = {
    "": 10, "\u093e": 6, "\u093f": 4, "\u0940": 2, "\u0941": 3, "\u0942": 1, "\u0943": 0.8,
    "\u0947": 3, "\u0948": 0.8, "\u094b": 1.5, "\u094c": 0.5,
}
#: independent vowels (word-initial)
VOWELS: tuple[str, ...] = ("अ", "आ", "इ", "ई", "उ", "ए", "ओ")

_LATIN_ONSETS = ("b", "c", "d", "f", "g", "h", "l", "m", "n", "p", "r", "s", "t", "v", "br", "st", "tr", "pl", "ch")
_LATIN_VOWELS = ("a", "e", "i", "o", "u", "ea", "ou")
_LATIN_CODAS = ("", "", "", "n", "r", "s", "t", "l", "m")


def _weighted(rng: np.random.Generator, table: dict[str, float]) -> str:
    keys = list(table)
    w = np.asarray([table[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=w / w.sum()))]


@lru_cache(maxsize=4)
def _load_word_list(path: str) -> tuple[str, ...]:
    words = []
    for line in Path(path).read_text(encoding="utf-8", errors="ignore").splitlines():
        w = line.strip()
        if 2 <= len(w) <= 10 and w.isascii() and w.isalpha() and w.islower():
            words.append(w)
    return tuple(sorted(set(words)))


def system_word_list() -> tuple[str | None, tuple[str, ...]]:
    """``(path, words)`` of the first usable system word list, or ``(None, ())`` when none is installed."""
    for p in WORD_LISTS:
        if Path(p).is_file():
            words = _load_word_list(p)
            if len(words) >= 1000:
                return p, words
    return None, ()


def latin_pseudo_word(rng: np.random.Generator) -> str:
    """A pronounceable lowercase pseudo-word of 1-3 consonant-vowel syllables (fallback without a word list)."""
    n = int(rng.integers(1, 4))
    return "".join(
        _LATIN_ONSETS[int(rng.integers(len(_LATIN_ONSETS)))]
        + _LATIN_VOWELS[int(rng.integers(len(_LATIN_VOWELS)))]
        + (_LATIN_CODAS[int(rng.integers(len(_LATIN_CODAS)))] if i == n - 1 else "")
        for i in range(n)
    )


def devanagari_akshara(rng: np.random.Generator, *, initial: bool = False, final: bool = False) -> str:
    """One Devanagari syllable: [C + virama] + C + [vowel sign] + [anusvara|visarga], or a vowel at word start."""
    if initial and rng.random() < 0.12:
        s = VOWELS[int(rng.integers(len(VOWELS)))]
    else:
        if rng.random() < 0.15:
            first = CONJUNCT_FIRST[int(rng.integers(len(CONJUNCT_FIRST)))]
            second = CONJUNCT_SECOND[int(rng.integers(len(CONJUNCT_SECOND)))]
            c = first + VIRAMA + second if second != first else first
        else:
            c = _weighted(rng, CONSONANTS)
        s = c + _weighted(rng, VOWEL_SIGNS)
    r = rng.random()
    if final and r < 0.10:
        s += VISARGA
    elif r < 0.18:
        s += ANUSVARA
    return s


def devanagari_word(rng: np.random.Generator) -> str:
    """A word of 1-4 aksharas (NFC-normalised)."""
    n = int(rng.choice([1, 2, 2, 3, 3, 3, 4]))
    return unicodedata.normalize("NFC", "".join(devanagari_akshara(rng, initial=i == 0, final=i == n - 1) for i in range(n)))


def is_valid_devanagari(word: str) -> bool:
    """True when ``word`` is a sequence of well-formed aksharas: a vowel sign or virama only after a
    consonant, anusvara/visarga only after a consonant, vowel sign or vowel, a virama always followed by a consonant."""
    if not word:
        return False
    signs = set(VOWEL_SIGNS) - {""}
    prev = ""
    for ch in word:
        if ch in CONSONANTS or ch in VOWELS or ch == DANDA:
            ok = ch == DANDA or prev != VIRAMA or ch in CONSONANTS
        elif ch in signs or ch == VIRAMA:
            ok = prev in CONSONANTS
        elif ch in (ANUSVARA, VISARGA):
            ok = prev in CONSONANTS or prev in signs or prev in VOWELS
        else:
            return False
        if not ok:
            return False
        prev = ch
    return prev != VIRAMA


def make_words(script: Script, n: int, rng: np.random.Generator) -> tuple[list[str], str]:
    """``n`` words of ``script`` and where they came from (a word-list path or ``"composed syllables"``).

    Latin sentences start with a capital and end with a full stop; Devanagari sentences end with a danda.
    """
    if script == "devanagari":
        words = [devanagari_word(rng) for _ in range(n)]
        source = "composed Devanagari syllables"
        stop = DANDA
    elif script == "latin":
        path, vocab = system_word_list()
        if vocab:
            words = [vocab[int(i)] for i in rng.integers(0, len(vocab), size=n)]
            source = path or ""
        else:
            words = [latin_pseudo_word(rng) for _ in range(n)]
            source = "composed Latin syllables"
        stop = "."
    else:
        raise ValueError(f"unknown script {script!r}")
    out: list[str] = []
    start = True
    for i, w in enumerate(words):
        if script == "latin" and start:
            w = w[:1].upper() + w[1:]
        start = False
        if i == n - 1 or rng.random() < 0.1:
            w = w + stop
            start = True
        elif script == "latin" and rng.random() < 0.05:
            w = w + ","
        out.append(w)
    return out, source


def detect_script(text: str) -> Script:
    """``devanagari`` when most letters of ``text`` are Devanagari, else ``latin``."""
    deva = sum(1 for ch in text if "\u0900" <= ch <= "\u097f")
    latin = sum(1 for ch in text if ch.isascii() and ch.isalpha())
    return "devanagari" if deva > latin else "latin"
