"""Score predicted events against truth, as defined in shared/reference/events.md.

A prediction matches a true event of the same type when their intervals overlap with IoU >= 0.2, one to
one, matched greedily by IoU. Reported per type: precision, recall, F1, false alarms per hour and the
median onset error (predicted minus true, seconds). For the spasms matched so, whose truth names a
subtype: how often the detector gave the same subtype, and the confusion table (:class:`SubtypeScore`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

MIN_IOU = 0.2


class Interval(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def onset_s(self) -> float: ...
    @property
    def offset_s(self) -> float: ...


@dataclass(frozen=True)
class TypeScore:
    type: str
    true: int
    predicted: int
    matched: int
    hours: float
    onset_errors_s: tuple[float, ...]

    @property
    def precision(self) -> float:
        return self.matched / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.true if self.true else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def false_alarms_per_hour(self) -> float:
        return (self.predicted - self.matched) / self.hours if self.hours else 0.0

    @property
    def median_onset_error_s(self) -> float:
        return float(np.median(self.onset_errors_s)) if self.onset_errors_s else float("nan")

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "type": self.type,
            "true": self.true,
            "predicted": self.predicted,
            "matched": self.matched,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "false_alarms_per_hour": round(self.false_alarms_per_hour, 4),
            "median_onset_error_s": round(self.median_onset_error_s, 3),
            "median_abs_onset_error_s": round(float(np.median(np.abs(self.onset_errors_s))), 3)
            if self.onset_errors_s
            else float("nan"),
            "hours": round(self.hours, 4),
        }


def iou(a: Interval, b: Interval) -> float:
    inter = min(a.offset_s, b.offset_s) - max(a.onset_s, b.onset_s)
    if inter <= 0:
        return 0.0
    union = max(a.offset_s, b.offset_s) - min(a.onset_s, b.onset_s)
    return inter / union if union > 0 else 0.0


def match(truth: Sequence[Interval], predicted: Sequence[Interval]) -> list[tuple[int, int]]:
    """Greedy one-to-one matching by IoU (>= MIN_IOU); pairs of (truth index, predicted index)."""
    pairs = [(iou(t, p), i, j) for i, t in enumerate(truth) for j, p in enumerate(predicted) if t.type == p.type]
    pairs.sort(key=lambda x: -x[0])
    used_t: set[int] = set()
    used_p: set[int] = set()
    out = []
    for score, i, j in pairs:
        if score < MIN_IOU or i in used_t or j in used_p:
            continue
        used_t.add(i)
        used_p.add(j)
        out.append((i, j))
    return out


def _matched(
    truth: Sequence[Interval], predicted: Sequence[Interval], kind: str
) -> tuple[list[Interval], list[Interval], list[tuple[int, int]]]:
    """The true and predicted events of one type, and their one-to-one matches."""
    t = [x for x in truth if x.type == kind]
    p = [x for x in predicted if x.type == kind]
    return t, p, match(t, p)


def score(
    truth: Sequence[Interval],
    predicted: Sequence[Interval],
    hours: float,
    types: Sequence[str] = ("cramp", "spasm"),
) -> dict[str, TypeScore]:
    """Per-type scores of one recording (or of several concatenated with offsets)."""
    out = {}
    for kind in types:
        t, p, pairs = _matched(truth, predicted, kind)
        errors = tuple(p[j].onset_s - t[i].onset_s for i, j in pairs)
        out[kind] = TypeScore(kind, len(t), len(p), len(pairs), hours, errors)
    return out


#: An error's neighbourhood: annotations starting or ending this close to it are listed as "near" it.
NEAR_S = 2.0


@dataclass(frozen=True)
class ScoringError:
    """One missed true event or one false prediction, with what lay near it (to see what was confused)."""

    kind: str  # "missed" (a true event no prediction matched) or "false" (a prediction matching no true event)
    type: str
    onset_s: float
    offset_s: float
    near: tuple[str, ...]  # "false": truth annotations nearby (look-alikes too); "missed": predictions nearby

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "type": self.type,
            "onset_s": round(self.onset_s, 3),
            "offset_s": round(self.offset_s, 3),
            "near": list(self.near),
        }


def _label(x: Interval) -> str:
    subtype = getattr(x, "subtype", "") or ""
    return f"{x.type}/{subtype}" if subtype else x.type


def _near(x: Interval, others: Sequence[Interval]) -> tuple[str, ...]:
    return tuple(
        sorted({_label(o) for o in others if o.offset_s > x.onset_s - NEAR_S and o.onset_s < x.offset_s + NEAR_S})
    )


def errors(
    truth: Sequence[Interval], predicted: Sequence[Interval], types: Sequence[str] = ("cramp", "spasm")
) -> list[ScoringError]:
    """Every miss and false prediction of ``types``, matched as :func:`score` matches, in time order.

    A false prediction lists every truth annotation near it, including ones that are not scored (the
    simulator's ``voluntary``, ``turn``, ``artifact``...): that is what the detector took for an event.
    """
    out = []
    for kind in types:
        t, p, pairs = _matched(truth, predicted, kind)
        hit_t, hit_p = {i for i, _ in pairs}, {j for _, j in pairs}
        out += [
            ScoringError("missed", kind, x.onset_s, x.offset_s, _near(x, predicted))
            for i, x in enumerate(t)
            if i not in hit_t
        ]
        out += [
            ScoringError("false", kind, x.onset_s, x.offset_s, _near(x, truth))
            for j, x in enumerate(p)
            if j not in hit_p
        ]
    return sorted(out, key=lambda e: (e.onset_s, e.kind))


def split_by_accelerometer(
    scores: Sequence[dict[str, TypeScore]], has_acc: Sequence[bool]
) -> dict[str, dict[str, TypeScore]]:
    """Pooled scores of the recordings with and of those without an accelerometer (groups that exist)."""
    groups = {
        "with accelerometer": [s for s, a in zip(scores, has_acc, strict=True) if a],
        "without accelerometer": [s for s, a in zip(scores, has_acc, strict=True) if not a],
    }
    return {label: combine(group) for label, group in groups.items() if group}


#: Spasm subtypes in the order tables list them (events.md; detector/subtype.py).
SPASM_SUBTYPES = ("tonic", "clonus", "flexor", "extensor", "myoclonic")


@dataclass(frozen=True)
class SubtypeScore:
    """Subtypes of matched spasms: how many of each (true subtype, given subtype) pair.

    Only spasms matched as :func:`score` matches them, and whose truth names a subtype, count: a missed or
    false spasm is already in the spasm scores. A given subtype of ``""`` (a detector or event file
    without subtypes) counts as wrong.
    """

    pairs: tuple[tuple[str, str, int], ...] = ()  # (true, given, count), sorted

    @classmethod
    def of(cls, truth: Sequence[Interval], predicted: Sequence[Interval]) -> SubtypeScore:
        t, p, pairs = _matched(truth, predicted, "spasm")
        counts: dict[tuple[str, str], int] = {}
        for i, j in pairs:
            true = getattr(t[i], "subtype", "") or ""
            if true:
                key = (true, getattr(p[j], "subtype", "") or "")
                counts[key] = counts.get(key, 0) + 1
        return cls(tuple(sorted((a, b, n) for (a, b), n in counts.items())))

    @classmethod
    def pooled(cls, scores: Sequence[SubtypeScore]) -> SubtypeScore:
        counts: dict[tuple[str, str], int] = {}
        for s in scores:
            for a, b, n in s.pairs:
                counts[(a, b)] = counts.get((a, b), 0) + n
        return cls(tuple(sorted((a, b, n) for (a, b), n in counts.items())))

    @property
    def matched(self) -> int:
        return sum(n for _, _, n in self.pairs)

    @property
    def correct(self) -> int:
        return sum(n for a, b, n in self.pairs if a == b)

    @property
    def accuracy(self) -> float:
        return self.correct / self.matched if self.matched else float("nan")

    def count(self, true: str, given: str) -> int:
        return sum(n for a, b, n in self.pairs if a == true and b == given)

    def summary(self) -> str:
        if not self.matched:
            return "spasm subtype: no matched spasm with a true subtype"
        return f"spasm subtype accuracy {self.accuracy:.2f} ({self.correct} of {self.matched} matched spasms)"

    def table(self) -> str:
        """The accuracy line, then rows = true subtype, columns = given subtype."""
        if not self.matched:
            return self.summary()
        known = list(SPASM_SUBTYPES)
        others = sorted({x for a, b, _ in self.pairs for x in (a, b)} - set(known))
        names = known + others
        label = {name: name or "(none)" for name in names}
        corner = "true \\ given"
        width = max(len(corner), *(len(label[n]) for n in names))
        cols = [max(len(label[n]), 4) for n in names]
        head = f"{corner:<{width}}" + "".join(f"{label[n]:>{c + 2}}" for n, c in zip(names, cols, strict=True))
        rows = [self.summary(), head]
        for a in names:
            if any(x == a for x, _, _ in self.pairs):
                cells = "".join(f"{self.count(a, b):>{c + 2}}" for b, c in zip(names, cols, strict=True))
                rows.append(f"{label[a]:<{width}}{cells}")
        return "\n".join(rows)

    def as_dict(self) -> dict[str, object]:
        return {
            "matched": self.matched,
            "correct": self.correct,
            "accuracy": round(self.accuracy, 4) if self.matched else float("nan"),
            "confusion": [{"true": a, "given": b, "count": n} for a, b, n in self.pairs],
        }


def combine(scores: Sequence[dict[str, TypeScore]]) -> dict[str, TypeScore]:
    """Pool per-recording scores (sums counts and hours, pools onset errors)."""
    out: dict[str, TypeScore] = {}
    for per_type in scores:
        for kind, s in per_type.items():
            if kind not in out:
                out[kind] = s
                continue
            o = out[kind]
            out[kind] = TypeScore(
                kind,
                o.true + s.true,
                o.predicted + s.predicted,
                o.matched + s.matched,
                o.hours + s.hours,
                o.onset_errors_s + s.onset_errors_s,
            )
    return out


def format_table(scores: dict[str, TypeScore]) -> str:
    head = (
        f"{'type':<8}{'true':>6}{'pred':>6}{'match':>7}{'prec':>7}{'recall':>8}{'F1':>7}{'FA/h':>7}{'onset err s':>13}"
    )
    rows = [
        f"{s.type:<8}{s.true:>6}{s.predicted:>6}{s.matched:>7}{s.precision:>7.2f}{s.recall:>8.2f}"
        f"{s.f1:>7.2f}{s.false_alarms_per_hour:>7.2f}{s.median_onset_error_s:>13.1f}"
        for s in scores.values()
    ]
    return "\n".join([head, *rows])
