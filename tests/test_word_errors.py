"""Word error counts: hand-checked cases, and the total against a plain recursive edit distance."""

from functools import lru_cache

import numpy as np

from eval.word_errors import corpus_word_errors, word_errors, words


def edit_distance(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """The textbook recursion, memoized: the reference the table-filling version must agree with."""
    @lru_cache(maxsize=None)
    def d(i: int, j: int) -> int:
        if i == 0 or j == 0:
            return i + j
        return min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (a[i - 1] != b[j - 1]))
    return d(len(a), len(b))


def test_kinds_of_error_are_counted_apart():
    assert word_errors("the cat sat on the mat", "the cat sat on the mat").errors == 0
    deleted = word_errors("the cat sat on the mat", "the cat sat on mat")
    assert (deleted.substitutions, deleted.deletions, deleted.insertions) == (0, 1, 0)
    inserted = word_errors("a b c", "x a b c y")
    assert (inserted.substitutions, inserted.deletions, inserted.insertions, inserted.rate) == (0, 0, 2, 2 / 3)
    substituted = word_errors("a b c", "a q c")
    assert (substituted.substitutions, substituted.errors, substituted.reference_words) == (1, 1, 3)


def test_case_and_punctuation_do_not_count():
    assert words("Don't, he SAID.") == ["don't", "he", "said"]
    assert word_errors("There's iron, they say.", "there's IRON they say").errors == 0


def test_empty_transcripts():
    assert word_errors("", "").rate == 0.0
    assert word_errors("", "word").rate == float("inf")
    assert word_errors("two words", "").rate == 1.0


def test_total_matches_the_recursive_edit_distance():
    rng = np.random.default_rng(0)
    vocabulary = ["a", "b", "c", "d"]
    for _ in range(200):
        ref = tuple(rng.choice(vocabulary, rng.integers(0, 9)))
        hyp = tuple(rng.choice(vocabulary, rng.integers(0, 9)))
        counted = word_errors(" ".join(ref), " ".join(hyp))
        assert counted.errors == edit_distance(ref, hyp)
        assert counted.reference_words == len(ref)
        # the kinds add up to a valid alignment: every reference word is kept, substituted or deleted
        assert counted.reference_words - counted.deletions + counted.insertions == len(hyp)


def test_corpus_rate_weights_by_reference_words():
    total = corpus_word_errors([("a b c d", "a b c d"), ("e f", "x f")])
    assert (total.errors, total.reference_words) == (1, 6)
    assert abs(total.rate - 1 / 6) < 1e-12
