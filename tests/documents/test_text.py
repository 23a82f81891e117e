import unicodedata

import numpy as np

from restorekit.documents import text


def test_devanagari_words_are_valid_aksharas():
    rng = np.random.default_rng(0)
    words = [text.devanagari_word(rng) for _ in range(2000)]
    assert all(text.is_valid_devanagari(w) for w in words)
    assert all(unicodedata.normalize("NFC", w) == w for w in words)
    joined = "".join(words)
    # conjuncts, vowel signs and anusvara all occur, in sensible proportions
    assert 0.03 < joined.count(text.VIRAMA) / len(words) < 0.5
    signs = sum(joined.count(s) for s in text.VOWEL_SIGNS if s)
    assert signs / len(words) > 0.8
    assert joined.count(text.ANUSVARA) > 0 and joined.count(text.VISARGA) > 0


def test_validity_checker_rejects_malformed_clusters():
    ka, aa = "क", "\u093e"
    assert text.is_valid_devanagari(ka + aa)
    assert not text.is_valid_devanagari(aa + ka)  # vowel sign first
    assert not text.is_valid_devanagari(ka + text.VIRAMA + text.VIRAMA)
    assert not text.is_valid_devanagari(ka + aa + aa)  # two vowel signs
    assert not text.is_valid_devanagari(ka + text.VIRAMA)  # dangling virama
    assert not text.is_valid_devanagari("ka")


def test_latin_words_come_from_the_debian_word_list_and_are_reproducible():
    path, vocab = text.system_word_list()
    a, src = text.make_words("latin", 200, np.random.default_rng(3))
    b, _ = text.make_words("latin", 200, np.random.default_rng(3))
    assert a == b
    assert a[0][0].isupper() and a[-1].endswith(".")
    if path is not None:
        assert src == path and len(vocab) > 10000
        bare = [w.strip(".,").lower() for w in a]
        assert all(w in set(vocab) for w in bare)


def test_latin_fallback_without_a_word_list(monkeypatch):
    monkeypatch.setattr(text, "WORD_LISTS", ("/nonexistent/words",))
    words, src = text.make_words("latin", 50, np.random.default_rng(1))
    assert src == "composed Latin syllables"
    assert all(w.strip(".,").isascii() and w.strip(".,").isalpha() for w in words)


def test_detect_script():
    assert text.detect_script("Hello world") == "latin"
    assert text.detect_script(" ".join(text.make_words("devanagari", 10, np.random.default_rng(0))[0])) == "devanagari"
