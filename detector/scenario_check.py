"""Run the named scenarios (:mod:`crampwatch.scenarios`) through the detector and say which pass.

A check the training generator cannot grade itself on (issue 14): the scenarios are drawn by other code
on real background. Each recording goes through :func:`detector.offline.detect_recording`, exactly as
``detect`` runs, and is scored with the project's matcher (:mod:`detector.scoring`: IoU >= 0.2, greedy,
one to one, per type).

A scenario **passes** when every expected cramp and spasm is matched, no cramp or spasm is reported that
matches nothing, and every expected cramp comes out as exactly one cramp event (no other predicted cramp
overlaps it). PLMs are listed but do not decide a pass.

    results = run_scenarios(load_model())
    print(format_table(results))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from crampwatch.recording import Annotation
from crampwatch.scenarios import BY_NAME, SCENARIOS, SPASM_SUBTYPES, Scenario, build, expected_events

from .events import Event
from .model import Model
from .offline import detect_recording
from .scoring import SubtypeScore, TypeScore, combine, match, score

__all__ = ["CrampOutcome", "ScenarioResult", "ScenarioTotals", "check", "format_table", "run_scenarios", "summarize"]

SCORED = ("cramp", "spasm")


@dataclass(frozen=True, slots=True)
class CrampOutcome:
    """How one expected cramp came out: matched or not, in how many pieces, and its duration error."""

    onset_s: float
    offset_s: float
    matched: bool
    pieces: int  # predicted cramp events overlapping it at all
    found_duration_s: float  # of the matched prediction (nan when unmatched)

    @property
    def one_event(self) -> bool:
        return self.matched and self.pieces == 1

    @property
    def duration_error(self) -> float:
        """(found - true) / true duration of the matched prediction; nan when unmatched."""
        true = self.offset_s - self.onset_s
        return (self.found_duration_s - true) / true if self.matched else float("nan")


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    name: str
    description: str
    duration_s: float
    expected: tuple[Annotation, ...]  # cramp, spasm and plm truth
    found: tuple[Event, ...]  # every event the detector reported
    scores: dict[str, TypeScore]  # per scored type, from detector.scoring.score
    cramps: tuple[CrampOutcome, ...]
    spasm_hits: tuple[tuple[str, bool], ...]  # (subtype, matched) per expected spasm
    reasons: tuple[str, ...]  # why it failed; empty when it passed
    subtypes: SubtypeScore = field(default_factory=SubtypeScore)  # true x given subtype of the matched spasms

    @property
    def passed(self) -> bool:
        return not self.reasons


def _cramp_outcomes(truth: Sequence[Annotation], found: Sequence[Event]) -> tuple[CrampOutcome, ...]:
    t = [a for a in truth if a.type == "cramp"]
    p = [e for e in found if e.type == "cramp"]
    pairs = dict(match(t, p))
    out = []
    for i, a in enumerate(t):
        pieces = sum(1 for e in p if e.offset_s > a.onset_s and e.onset_s < a.offset_s)
        j = pairs.get(i)
        out.append(
            CrampOutcome(
                a.onset_s, a.offset_s, j is not None, pieces, p[j].duration_s if j is not None else float("nan")
            )
        )
    return tuple(out)


def _spasm_hits(truth: Sequence[Annotation], found: Sequence[Event]) -> tuple[tuple[str, bool], ...]:
    t = [a for a in truth if a.type == "spasm"]
    p = [e for e in found if e.type == "spasm"]
    hit = {i for i, _ in match(t, p)}
    return tuple((a.subtype, i in hit) for i, a in enumerate(t))


def check(scenario: Scenario, model: Model, seed: int = 0) -> ScenarioResult:
    """Build one scenario, detect, score."""
    rec = build(scenario, seed)
    truth = expected_events(rec)
    found = tuple(detect_recording(rec, model))
    scores = score(truth, found, rec.duration_s / 3600.0, SCORED)
    cramps = _cramp_outcomes(truth, found)
    reasons = []
    for kind, s in scores.items():
        if s.matched < s.true:
            reasons.append(f"missed {s.true - s.matched} {kind}")
        if s.predicted > s.matched:
            reasons.append(f"{s.predicted - s.matched} false {kind}")
    split = sum(1 for c in cramps if c.matched and c.pieces > 1)
    if split:
        reasons.append(f"{split} cramp in pieces")
    return ScenarioResult(
        scenario.name,
        scenario.description,
        rec.duration_s,
        truth,
        found,
        scores,
        cramps,
        _spasm_hits(truth, found),
        tuple(reasons),
        SubtypeScore.of(truth, found),
    )


def run_scenarios(model: Model, *, seed: int = 0, names: Sequence[str] | None = None) -> list[ScenarioResult]:
    """Every scenario (or those ``names``) through ``model``; raises RealDataMissingError without real data.

    Unknown names raise ``KeyError`` listing the known ones.
    """
    if names is None:
        chosen = list(SCENARIOS)
    else:
        unknown = [n for n in names if n not in BY_NAME]
        if unknown:
            raise KeyError(f"unknown scenario(s) {unknown}; known: {sorted(BY_NAME)}")
        chosen = [BY_NAME[n] for n in names]
    return [check(s, model, seed) for s in chosen]


@dataclass(frozen=True, slots=True)
class ScenarioTotals:
    passed: int
    scenarios: int
    hours: float
    scores: dict[str, TypeScore]  # pooled cramp and spasm scores
    cramps_one_event: int
    cramps_true: int
    median_abs_duration_error: float  # over matched cramps; nan when none matched
    spasm_recall_by_subtype: dict[str, tuple[int, int]]  # subtype -> (matched, true)
    subtypes: SubtypeScore = field(default_factory=SubtypeScore)  # pooled true x given subtype of the matched spasms


def summarize(results: Sequence[ScenarioResult]) -> ScenarioTotals:
    pooled = combine([r.scores for r in results])
    cramps = [c for r in results for c in r.cramps]
    errors = [abs(c.duration_error) for c in cramps if c.matched]
    by_subtype: dict[str, tuple[int, int]] = {}
    for sub in SPASM_SUBTYPES:
        hits = [ok for r in results for s, ok in r.spasm_hits if s == sub]
        if hits:
            by_subtype[sub] = (sum(hits), len(hits))
    return ScenarioTotals(
        passed=sum(r.passed for r in results),
        scenarios=len(results),
        hours=sum(r.duration_s for r in results) / 3600.0,
        scores=pooled,
        cramps_one_event=sum(c.one_event for c in cramps),
        cramps_true=len(cramps),
        median_abs_duration_error=float(np.median(errors)) if errors else float("nan"),
        spasm_recall_by_subtype=by_subtype,
        subtypes=SubtypeScore.pooled([r.subtypes for r in results]),
    )


def _events(items: Sequence[Annotation] | Sequence[Event]) -> str:
    parts = []
    for x in items:
        if x.type not in SCORED:
            continue
        label = f"{x.type}/{x.subtype}" if x.subtype else x.type
        parts.append(f"{label} {x.onset_s:.0f}-{x.offset_s:.0f}")
    return ", ".join(parts) if parts else "-"


def _cramp_note(r: ScenarioResult) -> str:
    notes = []
    for c in r.cramps:
        if c.matched:
            notes.append(f"{c.pieces} piece{'s' if c.pieces != 1 else ''}, dur {c.duration_error:+.0%}")
        else:
            notes.append(f"missed ({c.pieces} overlapping)")
    return "; ".join(notes) if notes else "-"


def format_table(results: Sequence[ScenarioResult]) -> str:
    """A plain-text table: one row per scenario, then the totals."""
    rows = [("scenario", "result", "expected", "found", "cramps", "plm exp/found")]
    for r in results:
        plm_t = sum(1 for a in r.expected if a.type == "plm")
        plm_p = sum(1 for e in r.found if e.type == "plm")
        rows.append(
            (
                r.name,
                "PASS" if r.passed else "FAIL: " + "; ".join(r.reasons),
                _events(r.expected),
                _events(r.found),
                _cramp_note(r),
                f"{plm_t}/{plm_p}",
            )
        )
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += ["", *_totals_lines(summarize(results))]
    return "\n".join(lines)


def _totals_lines(t: ScenarioTotals) -> list[str]:
    cramp, spasm = t.scores.get("cramp"), t.scores.get("spasm")
    out = [f"passed {t.passed} of {t.scenarios} scenarios ({t.hours * 60:.0f} min of signal)"]
    if cramp is not None:
        out.append(
            f"cramp  P {cramp.precision:.2f}  R {cramp.recall:.2f}  F1 {cramp.f1:.2f}  "
            f"({cramp.matched} of {cramp.true} found, {cramp.predicted} reported)  "
            f"false cramps/h {cramp.false_alarms_per_hour:.2f}"
        )
        out.append(
            f"cramps as exactly one event: {t.cramps_one_event} of {t.cramps_true}; "
            f"median |cramp-duration error| {t.median_abs_duration_error:.0%}"
        )
    if spasm is not None:
        out.append(
            f"spasm  P {spasm.precision:.2f}  R {spasm.recall:.2f}  F1 {spasm.f1:.2f}  "
            f"({spasm.matched} of {spasm.true} found, {spasm.predicted} reported)  "
            f"false spasms/h {spasm.false_alarms_per_hour:.2f}"
        )
    if t.spasm_recall_by_subtype:
        out.append(
            "spasm recall by subtype: " + ", ".join(f"{k} {m}/{n}" for k, (m, n) in t.spasm_recall_by_subtype.items())
        )
    out += t.subtypes.table().splitlines()
    return out
