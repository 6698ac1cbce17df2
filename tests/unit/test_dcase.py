"""DCASE 2024 Task 5 preparation (SPEC A.1): clip and slot arithmetic, temporal splits, CSV
parsing, the SL / AL class mapping — against hand-computed values (see tests/audio_corpora.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from audio_corpora import AL_CLASSES, HB_POS, ME_POS, SL_CLASSES, make_dcase_dev

from iml_tui.data.dcase import (
    DivisionResult,
    Event,
    PrepareResult,
    Source,
    SplitCounts,
    SplitCut,
    clip_events,
    n_clips,
    parse_annotation,
    piece_frame_labels,
    plan_al,
    plan_cuts,
    plan_sl,
    slot_bounds,
    split_cuts,
    split_cuts_demo,
)
from iml_tui.errors import UserError


@pytest.mark.parametrize(
    ("d", "n"),
    [
        (0.5, 1),
        (5, 1),
        (8.5, 1),
        (10, 1),
        (10.001, 2),
        (14.75, 2),
        (15, 2),
        (20, 3),
        (23.5, 4),
        (40, 7),
    ],
)
def test_n_clips_formula(d: float, n: int) -> None:
    assert n_clips(d) == n


def test_slot_bounds_follow_the_formula() -> None:
    b = slot_bounds()
    assert b.shape == (32, 2)
    assert b[0] == pytest.approx([0.0, 0.315])  # (0 - 160) / 32000 clipped to 0
    assert b[1] == pytest.approx([0.315, 0.635])
    assert b[30] == pytest.approx([9.595, 9.915])
    assert b[31] == pytest.approx([9.915, 10.0])  # 10.235 clipped to 10


def _slots(lab: np.ndarray, clip: int, cls: int = 0) -> list[int]:
    return [int(k) for k in np.flatnonzero(lab[clip, :, cls])]


def test_frame_labels_of_a_hb_piece_by_hand() -> None:
    events = [Event(s, e, 0, True) for s, e in HB_POS] + [Event(23.0, 24.0, 0, False)]
    lab = piece_frame_labels(clip_events(events, 0.0, 23.5), 23.5, 1)
    assert lab.shape == (4, 32, 1)
    # clip 0 [0, 10]: (2,4) -> slots 6..12, (6,7) -> 18..21; (10,12) starts at the clip end
    assert _slots(lab, 0) == [*range(6, 13), *range(18, 22)]
    # clip 1 [5, 15]: (6,7) -> 3..6, (10,12) -> 15..21, (11,13) -> 18..25
    assert _slots(lab, 1) == [*range(3, 7), *range(15, 26)]
    # clip 2 [10, 20]: (10,12) -> 0..6, (11,13) -> 3..9; (20,21) starts at the clip end
    assert _slots(lab, 2) == list(range(0, 10))
    # clip 3 [15, 25], zero-padded after 8.5 s: (20,21) -> 15..18; UNK (23,23.5) gives nothing
    assert _slots(lab, 3) == list(range(15, 19))


def test_frame_labels_at_a_clip_edge_and_unk_ignored() -> None:
    # ME piece [10.25, 25]: POS (12,13) -> (1.75, 2.75); (20, 20.5) -> (9.75, 10.25);
    # UNK (15, 16) -> (4.75, 5.75)
    events = [Event(s, e, 0, True) for s, e in ME_POS] + [Event(15.0, 16.0, 0, False)]
    piece = clip_events(events, 10.25, 25.0)
    assert [(e.start, e.end, e.positive) for e in piece] == [
        (1.75, 2.75, True),
        (9.75, 10.25, True),
        (4.75, 5.75, False),
    ]
    lab = piece_frame_labels(piece, 14.75, 1)
    assert lab.shape == (2, 32, 1)
    assert _slots(lab, 0) == [5, 6, 7, 8, 30, 31]
    assert _slots(lab, 1) == [14, 15, 16]


def test_multilabel_slots_and_zero_length_event() -> None:
    events = [Event(0.0, 0.1, 0, True), Event(0.0, 0.1, 1, True), Event(0.32, 0.32, 1, True)]
    lab = piece_frame_labels(events, 3.0, 2)
    assert _slots(lab, 0, 0) == [0]
    assert _slots(lab, 0, 1) == [0, 1]  # the point at 0.32 s lies in slot 1 [0.315, 0.635)


AL = (0.70, 0.85)


def test_split_even_events() -> None:
    # 100 events (2i, 2i+1) of 1 s: cum[k] = k + 1 (k from 0). 70 %: gap 70, S = k 0..68 (cum 69),
    # k = 68 (start 136), j = 67 (end 135): (135 + 136) / 2 = 135.5; train holds 68 events.
    # 85 %: gap 85, S = k 0..83: j = 82 (end 165), k = 83 (start 166): 165.5.
    even = [(2.0 * i, 2.0 * i + 1.0) for i in range(100)]
    cuts = plan_cuts([even], 200.0, AL)
    assert [c.time for c in cuts] == pytest.approx([135.5, 165.5])
    assert [(c.kinds, c.fallback, c.overlap) for c in cuts] == [(("rule",), False, False)] * 2
    assert sum(1 for _, e in even if e <= cuts[0].time) == 68


def test_split_front_loaded() -> None:
    # durations 4 4 1 1 1 1 = 12, cum 4 8 9 10 11 12. 70 %: gap 8.4, S = (0,4) (5,9): slot
    # [4, 5] -> 4.5. 85 %: gap 10.2, S = the first four: j = (10,11), k = (12,13): [11, 12] -> 11.5.
    # (The gap after the event passing 70 % would give (9 + 10) / 2 = 9.5.)
    front = [(0.0, 4.0), (5.0, 9.0), (10.0, 11.0), (12.0, 13.0), (30.0, 31.0), (40.0, 41.0)]
    assert split_cuts([front], 50.0, AL) == pytest.approx([4.5, 11.5])


def test_split_two_events_falls_back_to_the_last_gap() -> None:
    # durations 4 1, cum 4 5; gaps 3.5 / 4.25: S is empty both times -> the fallback
    # [end of the second-to-last (5), start of the last (6)] -> 5.5 for both cuts.
    cuts = plan_cuts([[(6.0, 7.0), (1.0, 5.0)]], 12.0, AL)  # any order in
    assert [c.time for c in cuts] == pytest.approx([5.5, 5.5])
    assert [c.kinds for c in cuts] == [("last-gap",)] * 2 and cuts[0].fallback


def test_split_one_event_cuts_at_its_start_plus_the_gap() -> None:
    # (2,4): total 2, gaps 1.4 / 1.7 -> 2 + 1.4 = 3.4 and 2 + 1.7 = 3.7.
    cuts = plan_cuts([[(2.0, 4.0)]], 12.0, AL)
    assert [c.time for c in cuts] == pytest.approx([3.4, 3.7])
    assert [c.kinds for c in cuts] == [("one-event",)] * 2


def test_split_two_classes() -> None:
    # Three equal events per class: cum 1 2 3, gap 2.1, S = the first two: slot [end 1, start 2].
    # Slots meet: A [2, 6], B [4, 10] -> midpoint of (latest start 4, earliest end 6) = 5.
    a = [(1.0, 2.0), (6.0, 7.0), (8.0, 9.0)]
    b = [(3.0, 4.0), (10.0, 11.0), (12.0, 13.0)]
    assert split_cuts([a, b], 20.0, (0.70,)) == pytest.approx([5.0])
    # Slots do not meet: A [2, 3] (midpoint 2.5), B [12, 13] (12.5); latest start 12 > earliest
    # end 3 -> the largest midpoint, 12.5 (not (12 + 3) / 2 = 7.5).
    a = [(1.0, 2.0), (3.0, 4.0), (5.0, 6.0)]
    b = [(11.0, 12.0), (13.0, 14.0), (15.0, 16.0)]
    assert split_cuts([a, b], 20.0, (0.70,)) == pytest.approx([12.5])
    # one class by the rule, the other by a fallback: the file counts as a fallback
    cut = plan_cuts([a, [(2.5, 2.6)]], 20.0, (0.70,))[0]
    assert cut.kinds == ("one-event", "rule") and cut.fallback


def test_split_overlapping_events() -> None:
    # HB: durations 2 1 2 2 1 2 1 = 11, cum 2 3 5 7 8 10 11. 70 %: gap 7.7, S = the first four:
    # j = (10,12), k = (11,13): slot [12, 11] runs backwards (End(j) > Start(k)) -> 11.5, flagged.
    # 85 %: gap 9.35, S = the first five: j = (11,13), k = (20,21): [13, 20] -> 16.5.
    hb = [(float(s), float(e)) for s, e in HB_POS]
    cuts = plan_cuts([hb], 40.0, AL)
    assert [c.time for c in cuts] == pytest.approx([11.5, 16.5])
    assert [(c.kinds, c.overlap) for c in cuts] == [(("rule",), True), (("rule",), False)]


def test_split_corpus_files_and_edge_cases() -> None:
    # ME: 8 1.5 1 .5 = 11, cum 8 9.5 10.5 11; gaps 7.7 / 9.35 -> |S| 0 / 1: fallback
    # (13 + 20) / 2 = 16.5 twice.
    me = [(float(s), float(e)) for s, e in ME_POS]
    assert split_cuts([me], 25.0, AL) == pytest.approx([16.5, 16.5])
    assert split_cuts([[(2.0, 3.0)]], 12.0, AL) == pytest.approx([2.7, 2.85])  # RD
    none = plan_cuts([], 20.0, AL)
    assert [c.time for c in none] == pytest.approx([14.0, 17.0])
    assert [c.kinds for c in none] == [("no-pos",)] * 2
    # events past the end of the audio are dropped, ends clipped: (1,3) (8,10) remain,
    # cum 2 4, gap 3.2 -> |S| = 1 -> fallback (3 + 8) / 2 = 5.5
    assert split_cuts([[(8.0, 10.0), (1.0, 3.0), (30.0, 31.0)]], 20.0, (0.8,)) == pytest.approx(
        [5.5]
    )
    # a strict "below": cum equal to the gap is not in S. (0,1) (2,3) (4,5) (6,7): cum 1 2 3 4,
    # 50 % gap 2: S = (0,1) only -> fallback (5 + 6) / 2 = 5.5; 60 % gap 2.4: S = two -> 1.5
    four = [(0.0, 1.0), (2.0, 3.0), (4.0, 5.0), (6.0, 7.0)]
    assert split_cuts([four], 10.0, (0.5, 0.6)) == pytest.approx([5.5, 1.5])


def test_demo_rule_is_the_gap_after_the_event_reaching_the_ratio() -> None:
    # the demo recipe's rule, kept unchanged: HB 70 % reached at (20,21): (21 + 26) / 2 = 23.5;
    # 85 % at (26,28): (28 + 35) / 2 = 31.5
    hb = [(float(s), float(e)) for s, e in HB_POS]
    assert split_cuts_demo(hb, 40.0, AL) == pytest.approx([23.5, 31.5])
    me = [(1.0, 8.0), (7.0, 8.5), (12.0, 13.0), (20.0, 20.5)]
    assert split_cuts_demo(me, 25.0, AL) == pytest.approx([7.5, 10.25])
    assert split_cuts_demo([(2.0, 3.0)], 12.0, AL) == pytest.approx([7.5, 7.5])
    assert split_cuts_demo([], 20.0, AL) == pytest.approx([14.0, 17.0])
    assert split_cuts_demo([(1.0, 3.0), (8.0, 10.0), (17.0, 17.5)], 20.0, (0.8,)) == pytest.approx(
        [13.5]
    )
    assert split_cuts_demo([(8.0, 10.0), (1.0, 3.0), (30.0, 31.0)], 20.0, (0.5,)) == pytest.approx(
        [5.5]
    )


def test_clip_events_crossing_a_cut_land_in_both_pieces() -> None:
    ev = [Event(1.0, 8.0, 0, True), Event(7.0, 8.5, 0, True)]
    assert [(e.start, e.end) for e in clip_events(ev, 0.0, 7.5)] == [(1.0, 7.5), (7.0, 7.5)]
    assert [(e.start, e.end) for e in clip_events(ev, 7.5, 10.25)] == [(0.0, 0.5), (0.0, 1.0)]
    assert clip_events(ev, 10.25, 25.0) == []


HEAD = "Audiofilename,Starttime,Endtime"


@pytest.mark.parametrize(
    ("text", "validation", "needle"),
    [
        ("Audiofilename,Starttime,CLS\na.wav,1,POS\n", False, "line 1: missing column(s) Endtime"),
        (f"{HEAD}\na.wav,1,2\n", False, "line 1: no class column"),
        (f"{HEAD},X\na.wav,1,2,POS\n", True, "expected the single column Q"),
        (f"{HEAD},Q\na.wav,1,2,POS\na.wav,abc,3,POS\n", True, "line 3: bad Starttime 'abc'"),
        (f"{HEAD},Q\na.wav,-1,2,POS\n", True, "line 2: bad Starttime '-1'"),
        (f"{HEAD},Q\na.wav,1,nan,POS\n", True, "line 2: bad Endtime 'nan'"),
        (f"{HEAD},Q\na.wav,5,2,POS\n", True, "line 2: Endtime 2 < Starttime 5"),
        (f"{HEAD},A,B\na.wav,1,2,POS,MAYBE\n", False, "line 2: value 'MAYBE' in column B"),
        (f"{HEAD},A,B\na.wav,1,2,POS\n", False, "line 2: 4 fields, expected 5"),
    ],
)
def test_malformed_annotation_names_file_and_line(text: str, validation: bool, needle: str) -> None:
    with pytest.raises(UserError) as err:
        parse_annotation(text, "src.zip:Development_Set/Validation_Set/HB/x.csv", validation)
    assert str(err.value).startswith("src.zip:Development_Set/Validation_Set/HB/x.csv: ")
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_annotation_values_blank_lines_and_bom() -> None:
    ann = parse_annotation(
        f"\ufeff{HEAD},A,B\r\na.wav,1,2,POS,\n\n a.wav ,3.5,4, unk ,NEG\n",
        "x.csv",
        validation=False,
    )
    assert ann.columns == ["A", "B"]
    assert ann.rows == [(2, 1.0, 2.0, ["POS", ""]), (4, 3.5, 4.0, ["UNK", "NEG"])]


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dcase_dev(tmp_path_factory.mktemp("dcase"))


def test_plan_al_classes_dropped_file_and_events(dev: Path, tmp_path: Path) -> None:
    src = Source(dev, tmp_path)
    plan = plan_al(src)
    assert plan.class_list == AL_CLASSES  # SPEC order; Blackbird only in the dropped file
    assert plan.dropped_files == ["PB/BUK5_20180921_015906a"]
    assert [(r.dataset, r.name) for r in plan.recordings] == [
        ("HB", "HB_one"),
        ("ME", "ME1"),
        ("RD", "rd_1"),
    ]
    me = plan.recordings[1]
    assert {e.cls for e in me.events} == {AL_CLASSES.index("Meerkat_alarm_call")}
    assert [(e.start, e.end) for e in me.events if not e.positive] == [(15.0, 16.0)]
    assert me.pos_intervals == [(float(s), float(e)) for s, e in ME_POS]


def test_plan_sl_maps_per_dataset_drops_and_merges(dev: Path, tmp_path: Path) -> None:
    plan = plan_sl(Source(dev, tmp_path))
    assert plan.class_list == SL_CLASSES
    assert plan.dropped_classes == ["Anas_platyrhynchos_song"]
    assert plan.merged_classes == {"Tachybaptus_ruficollis_song": ["WMW/c_4", "WMW/c_5"]}
    bv, ht, wmw = plan.recordings
    assert (bv.name, ht.name, wmw.name) == ("bv_file_1", "h1", "w_1")
    assert [(e.start, e.end, e.cls, e.positive) for e in ht.events] == [(1.0, 2.0, 1, True)]
    # the BBB-only POS row (5,6) is not positive after the drop; AAA is UNK there
    assert bv.pos_intervals == [(1.0, 3.0), (8.0, 10.0), (17.0, 17.5)]
    assert [(e.start, e.positive) for e in bv.events if e.start == 5.0] == [(5.0, False)]
    tachy = 2
    assert [(e.start, e.end, e.positive) for e in wmw.events] == [
        (0.5, 1.5, True),
        (2.0, 3.0, True),
        (4.0, 5.0, False),
        (9.0, 10.0, True),
    ]
    assert {e.cls for e in wmw.events} == {tachy}


def test_missing_class_table_and_unlisted_recording(dev: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "dev"
    shutil.copytree(dev, copy)
    table = copy / "DCASE2024_task5_validation_set_classes.csv"
    lines = table.read_text().splitlines()
    table.write_text("\n".join(line for line in lines if not line.startswith("RD,")) + "\n")
    with pytest.raises(UserError, match=r"recording RD/rd_1 is not listed"):
        plan_al(Source(copy, tmp_path / "w"))
    table.unlink()
    with pytest.raises(UserError, match=r"DCASE2024_task5_validation_set_classes\.csv not found"):
        plan_al(Source(copy, tmp_path / "w"))
    with pytest.raises(UserError, match="source not found"):
        Source(tmp_path / "nope", tmp_path / "w")


def test_cut_counts_and_the_fallback_table() -> None:
    empty = SplitCounts(0, 0, 0.0, {"a": 0}, 0, {"a": 0})
    splits = {s: empty for s in ("train", "valid", "test")}
    # file 1: the rule twice, its first cut inside overlapping events; file 2: a one-event class
    # and a rule class at the first cut only; file 3: no POS events
    cuts = [
        [SplitCut(1.0, ("rule",), True), SplitCut(2.0, ("rule",), False)],
        [SplitCut(1.0, ("one-event", "rule"), False), SplitCut(2.0, ("rule",), False)],
        [SplitCut(1.0, ("no-pos",), False), SplitCut(2.0, ("no-pos",), False)],
    ]
    res = DivisionResult("al", ["a"], splits, Path("x"), cuts)
    assert res.cut_counts() == [
        {
            "rule": 2,
            "last-gap": 0,
            "one-event": 1,
            "no-pos": 1,
            "fallback": 2,
            "overlap": 1,
            "files": 3,
        },
        {
            "rule": 2,
            "last-gap": 0,
            "one-event": 0,
            "no-pos": 1,
            "fallback": 1,
            "overlap": 0,
            "files": 3,
        },
    ]
    assert res.fallback_files() == 2
    table = PrepareResult(Path("x"), [res], []).tables()[1]
    assert table.title == "AL: split cuts, files per kind; 2 of 3 files used a fallback"
    assert table.rows == [["train | valid", 2, 0, 1, 1, 1], ["valid | test", 2, 0, 0, 1, 0]]
