"""Word error rate between two transcripts: the Levenshtein distance over words, for intelligibility checks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

#: what is kept of a transcript before comparing: lowercase letters, digits and apostrophes inside words
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


def words(text: str) -> list[str]:
    """Lowercase words of `text`, punctuation dropped ("Don't, he said." -> ["don't", "he", "said"])."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class WordErrors:
    substitutions: int
    deletions: int
    insertions: int
    reference_words: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """Errors per reference word; an empty reference gives 0 when the hypothesis is empty too, else inf."""
        if self.reference_words == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return self.errors / self.reference_words

    def __add__(self, other: "WordErrors") -> "WordErrors":
        return WordErrors(self.substitutions + other.substitutions, self.deletions + other.deletions,
                          self.insertions + other.insertions, self.reference_words + other.reference_words)


def word_errors(reference: str, hypothesis: str) -> WordErrors:
    """Minimum edit between the two word sequences, split by kind (ties prefer substitution)."""
    ref, hyp = words(reference), words(hypothesis)
    # cost[j] and its (substitutions, deletions, insertions) for the current row of the edit table
    cost = list(range(len(hyp) + 1))
    kinds = [(0, 0, j) for j in range(len(hyp) + 1)]
    for i in range(1, len(ref) + 1):
        previous_cost, previous_kinds = cost, kinds
        cost, kinds = [i], [(0, i, 0)]
        for j in range(1, len(hyp) + 1):
            same = ref[i - 1] == hyp[j - 1]
            s, d, n = previous_kinds[j - 1]
            best, best_kind = previous_cost[j - 1] + (0 if same else 1), (s + (0 if same else 1), d, n)
            s, d, n = previous_kinds[j]
            if previous_cost[j] + 1 < best:
                best, best_kind = previous_cost[j] + 1, (s, d + 1, n)
            s, d, n = kinds[j - 1]
            if cost[j - 1] + 1 < best:
                best, best_kind = cost[j - 1] + 1, (s, d, n + 1)
            cost.append(best)
            kinds.append(best_kind)
    return WordErrors(*kinds[-1], len(ref))


def corpus_word_errors(pairs: Iterable[tuple[str, str]]) -> WordErrors:
    """Sum of `word_errors` over (reference, hypothesis) pairs: the corpus WER is errors over all words."""
    total = WordErrors(0, 0, 0, 0)
    for reference, hypothesis in pairs:
        total = total + word_errors(reference, hypothesis)
    return total
