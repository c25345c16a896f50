"""Scoring with pyannote.metrics: DER (missed, false alarm, confusion) and JER, per file and in total."""

from __future__ import annotations

from dataclasses import dataclass, field


def scored_region(reference, hypothesis, uem=None):
    """`uem`, or without one the extent of reference and hypothesis together: what pyannote.metrics scores
    then too, said here so that it does not warn on stderr for every file."""
    if uem is not None:
        return uem
    from pyannote.core import Timeline

    covered = reference.get_timeline().union(hypothesis.get_timeline())
    return Timeline([covered.extent()]) if covered else Timeline()


@dataclass
class DiarizationScores:
    """Accumulates DER components and JER over files; `rows` has one dict per file."""

    collar: float = 0.0
    skip_overlap: bool = False
    rows: list[dict] = field(default_factory=list)

    def __post_init__(self):
        from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

        self._der = DiarizationErrorRate(collar=self.collar, skip_overlap=self.skip_overlap)
        self._jer = JaccardErrorRate(collar=self.collar, skip_overlap=self.skip_overlap)

    def add(self, uri: str, reference, hypothesis, uem=None) -> dict:
        uem = scored_region(reference, hypothesis, uem)
        components = self._der(reference, hypothesis, uem=uem, detailed=True)
        jer = self._jer(reference, hypothesis, uem=uem)
        total = components["total"]
        row = {
            "uri": uri,
            "total": total,
            "missed": components["missed detection"],
            "false_alarm": components["false alarm"],
            "confusion": components["confusion"],
            "der": components["diarization error rate"],
            "jer": float(jer),
            "reference_speakers": len(reference.labels()),
            "hypothesis_speakers": len(hypothesis.labels()),
            "speaker_count_error": len(hypothesis.labels()) - len(reference.labels()),
        }
        self.rows.append(row)
        return row

    def total(self) -> dict:
        total = sum(row["total"] for row in self.rows)
        sums = {key: sum(row[key] for row in self.rows) for key in ("missed", "false_alarm", "confusion")}
        return {
            "uri": "TOTAL",
            "total": total,
            **sums,
            "der": (sums["missed"] + sums["false_alarm"] + sums["confusion"]) / total if total else 0.0,
            "jer": abs(self._jer) if self.rows else 0.0,
            "reference_speakers": sum(row["reference_speakers"] for row in self.rows),
            "hypothesis_speakers": sum(row["hypothesis_speakers"] for row in self.rows),
            # signed errors add up, so the total says whether a system leans to too many or too few speakers
            "speaker_count_error": sum(row["speaker_count_error"] for row in self.rows),
            "speaker_count_right": sum(row["speaker_count_error"] == 0 for row in self.rows),
        }


#: what identification calls a speaker that matched no enrolled voice (cluster/registry/match.py): `unknown_<n>`
UNKNOWN = "unknown"


def open_set_labels(annotation, enrolled: set[str] | None):
    """`annotation` with every label that is not an enrolled name renamed `unknown`.

    Open-set identification is right about a speaker nobody enrolled when it says "unknown"; which
    unknown it is (unknown_1 or unknown_2) is diarization's business, already scored by DER. So on the
    reference side the labels outside `enrolled` become `unknown`, and on the hypothesis side the
    `unknown_<n>` labels do (enrolled=None: only the `unknown_<n>` labels). Names are never mapped.
    """
    from cluster.registry.values import RESERVED_NAME

    mapping = {label: UNKNOWN for label in annotation.labels()
               if RESERVED_NAME.match(str(label)) or (enrolled is not None and label not in enrolled)}
    return annotation.rename_labels(mapping) if mapping else annotation


def _rttm_labels(annotation):
    """`annotation` with its labels in their RTTM form (unchanged when none holds whitespace)."""
    from diarize.output import rttm_name

    mapping = {label: rttm_name(label) for label in annotation.labels() if rttm_name(label) != label}
    return annotation.rename_labels(mapping) if mapping else annotation


@dataclass
class IdentificationScores:
    """Accumulates pyannote.metrics IdentificationErrorRate (labels compared as they are, no optimal
    mapping) over files; `rows` has one dict per file. `enrolled`: the names a registry holds, so that a
    reference speaker outside it counts as correctly identified when the hypothesis says unknown."""

    enrolled: set[str]
    collar: float = 0.0
    skip_overlap: bool = False
    rows: list[dict] = field(default_factory=list)

    def __post_init__(self):
        from pyannote.metrics.identification import IdentificationErrorRate

        from diarize.output import rttm_name

        self._ier = IdentificationErrorRate(collar=self.collar, skip_overlap=self.skip_overlap)
        # Names are compared in their RTTM form (whitespace as "_", diarize/output.py rttm_name): a reference
        # or hypothesis read from RTTM can only hold that form, while the registry and a fresh identification
        # hold "Ada Lovelace". Names that differ only in whitespace are thereby one name here.
        self._enrolled_labels = {rttm_name(name) for name in self.enrolled}

    def add(self, uri: str, reference, hypothesis, uem=None) -> dict:
        uem = scored_region(reference, hypothesis, uem)
        components = self._ier(open_set_labels(_rttm_labels(reference), self._enrolled_labels),
                               open_set_labels(_rttm_labels(hypothesis), None), uem=uem, detailed=True)
        row = {
            "uri": uri,
            "ier": components["identification error rate"],
            "ier_confusion": components["confusion"],
            "ier_missed": components["missed detection"],
            "ier_false_alarm": components["false alarm"],
            "ier_total": components["total"],
        }
        self.rows.append(row)
        return row

    def total(self) -> dict:
        sums = {key: sum(row[key] for row in self.rows)
                for key in ("ier_confusion", "ier_missed", "ier_false_alarm", "ier_total")}
        return {"uri": "TOTAL", "ier": abs(self._ier) if self.rows else 0.0, **sums}


@dataclass(frozen=True)
class Convention:
    """A scoring convention in md-eval/dscore terms, and what it takes in pyannote.metrics.

    md-eval's `-c X` and dscore's `--collar X` forgive X seconds on EACH side of a reference boundary;
    pyannote.metrics' `collar=X` is the whole width of the forgiven region, X/2 on each side. So a collar of
    +-0.25 s is md-eval `-c 0.25` and pyannote `collar=0.5`."""

    name: str
    each_side: float  # seconds forgiven on each side of a reference boundary (md-eval -c)
    skip_overlap: bool  # True: regions where reference speakers overlap are not scored (md-eval -1)

    @property
    def pyannote_collar(self) -> float:
        return 2 * self.each_side

    def describe(self) -> str:
        collar = ("no collar" if self.each_side == 0 else
                  f"collar +-{self.each_side:g} s around each reference boundary (md-eval -c {self.each_side:g}, "
                  f"pyannote.metrics collar={self.pyannote_collar:g})")
        overlap = "overlapping speech not scored" if self.skip_overlap else "overlapping speech scored"
        return f"{self.name}: {collar}; {overlap}"


#: the three conventions of the diarization literature (Landini et al. 2022 name them; DIHARD scores "full")
CONVENTIONS = {
    "full": Convention("full", 0.0, False),
    "fair": Convention("fair", 0.25, False),
    "forgiving": Convention("forgiving", 0.25, True),
}


def convention_of(pyannote_collar: float, skip_overlap: bool) -> Convention:
    """The named convention that raw settings amount to, else one named "custom"."""
    for convention in CONVENTIONS.values():
        if abs(convention.pyannote_collar - pyannote_collar) < 1e-9 and convention.skip_overlap == skip_overlap:
            return convention
    return Convention("custom", pyannote_collar / 2, skip_overlap)
