"""Event scoring (events.md rules) and the segmenter's hysteresis, merging and minimum durations."""

from __future__ import annotations

import numpy as np

from crampwatch.recording import Annotation
from detector.scoring import SubtypeScore, combine, errors, iou, score
from detector.segment import Segmenter, SegmentRules


def test_iou_and_one_to_one_greedy_matching() -> None:
    truth = [Annotation("cramp", 100, 200), Annotation("spasm", 300, 310)]
    pred = [Annotation("cramp", 105, 210), Annotation("cramp", 150, 160), Annotation("spasm", 400, 410)]
    assert iou(truth[0], pred[0]) == 95 / 110
    s = score(truth, pred, hours=1.0)
    assert (s["cramp"].matched, s["cramp"].predicted, s["cramp"].true) == (1, 2, 1)
    assert s["cramp"].precision == 0.5 and s["cramp"].recall == 1.0
    assert s["cramp"].false_alarms_per_hour == 1.0
    assert s["cramp"].median_onset_error_s == 5.0
    assert s["spasm"].matched == 0 and s["spasm"].f1 == 0.0


def test_subtype_score_counts_matched_spasms_only_true_by_given() -> None:
    truth = [
        Annotation("spasm", 10, 20, "clonus"),
        Annotation("spasm", 30, 32, "flexor"),
        Annotation("spasm", 40, 41, "myoclonic"),  # missed: not in the subtype table
        Annotation("spasm", 50, 52, ""),  # no true subtype: not scored for subtype
        Annotation("cramp", 100, 200),
    ]
    pred = [
        Annotation("spasm", 10, 20, "clonus"),
        Annotation("spasm", 30, 32, "tonic"),
        Annotation("spasm", 50, 52, "tonic"),
        Annotation("spasm", 70, 72, "tonic"),  # false: not in the subtype table
        Annotation("cramp", 100, 200),
    ]
    s = SubtypeScore.of(truth, pred)
    assert (s.matched, s.correct) == (2, 1) and s.accuracy == 0.5
    assert (s.count("clonus", "clonus"), s.count("flexor", "tonic"), s.count("flexor", "flexor")) == (1, 1, 0)
    table = s.table().splitlines()
    assert table[0] == "spasm subtype accuracy 0.50 (1 of 2 matched spasms)"
    assert table[1].split() == ["true", "\\", "given", "tonic", "clonus", "flexor", "extensor", "myoclonic"]
    assert [row.split() for row in table[2:]] == [
        ["clonus", "0", "1", "0", "0", "0"],
        ["flexor", "1", "0", "0", "0", "0"],
    ]
    pooled = SubtypeScore.pooled([s, s, SubtypeScore()])
    assert (pooled.matched, pooled.correct) == (4, 2)
    assert SubtypeScore.of([Annotation("spasm", 0, 1, "tonic")], [Annotation("spasm", 0, 1)]).count("tonic", "") == 1
    assert "no matched spasm" in SubtypeScore().table()


def test_errors_list_misses_and_false_events_with_what_was_near() -> None:
    truth = [
        Annotation("cramp", 100, 200),
        Annotation("spasm", 300, 302, "flexor"),
        Annotation("voluntary", 500, 504),  # a look-alike: not scored, but named next to a false spasm
    ]
    pred = [Annotation("cramp", 101, 199), Annotation("spasm", 499, 501), Annotation("plm", 300.5, 301.5)]
    out = errors(truth, pred)
    assert [(e.kind, e.type, e.onset_s) for e in out] == [("missed", "spasm", 300), ("false", "spasm", 499)]
    assert out[0].near == ("plm",)  # what the detector reported instead
    assert out[1].near == ("voluntary",)
    assert out[1].as_dict()["near"] == ["voluntary"]
    # a matched pair is never an error, and the counts agree with score()
    s = score(truth, pred, 1.0)
    assert sum(e.kind == "missed" for e in out) == sum(v.true - v.matched for v in s.values())
    assert sum(e.kind == "false" for e in out) == sum(v.predicted - v.matched for v in s.values())


def test_low_overlap_does_not_match() -> None:
    truth = [Annotation("cramp", 0, 100)]
    pred = [Annotation("cramp", 90, 200)]  # IoU 10/200 = 0.05
    assert score(truth, pred, 1.0)["cramp"].matched == 0


def test_combine_pools_counts() -> None:
    a = score([Annotation("cramp", 0, 60)], [Annotation("cramp", 1, 60)], 0.5)
    b = score([Annotation("cramp", 0, 60)], [], 0.5)
    pooled = combine([a, b])["cramp"]
    assert (pooled.true, pooled.matched, pooled.hours) == (2, 1, 1.0)


def _run(p_cramp: np.ndarray, p_spasm: np.ndarray, chunks: list[int]) -> list[tuple[str, int, int]]:
    seg = Segmenter(("cramp", "spasm"), 0.5, SegmentRules())
    probs = np.column_stack([p_cramp, p_spasm])
    out = []
    start = 0
    for n in chunks:
        out += seg.push(probs[start : start + n], np.ones(n), np.ones(n, dtype=bool))
        start += n
    out += seg.finish()
    return [(s.type, s.first, s.last) for s in out]


def test_segmenter_hysteresis_merge_and_min_duration() -> None:
    n = 400
    cramp = np.zeros(n)
    cramp[50:150] = 0.97
    cramp[100:104] = 0.1  # a 2 s dip inside the cramp: merged
    cramp[45:50] = 0.5  # run-up above `off` before `on` belongs to the event
    spasm = np.zeros(n)
    spasm[300:306] = 0.97  # 3 s spasm
    spasm[350:352] = 0.97  # 1 s spasm
    cramp[200:210] = 0.97  # 5 s "cramp": shorter than the 15 s minimum, dropped
    expected = [("cramp", 45, 149), ("spasm", 300, 305), ("spasm", 350, 351)]
    assert _run(cramp, spasm, [n]) == expected
    # the same result whatever the batching
    assert _run(cramp, spasm, [1] * n) == expected
    assert _run(cramp, spasm, [7, 93, 150, 150]) == expected
