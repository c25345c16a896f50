"""Scoring with pyannote.metrics: DER (missed, false alarm, confusion) and JER, per file and in total."""

from __future__ import annotations

from dataclasses import dataclass, field


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
        }
