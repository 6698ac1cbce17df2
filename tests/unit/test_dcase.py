"""DCASE 2024 Task 5 preparation (SPEC A.1): clip and slot arithmetic, temporal splits, CSV
parsing, the SL / AL class mapping — against hand-computed values (see tests/audio_corpora.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from audio_corpora import AL_CLASSES, HB_POS, ME_POS, SL_CLASSES, make_dcase_dev

from iml_tui.data.dcase import (
    Event,
    Source,
    clip_events,
    n_clips,
    parse_annotation,
    piece_frame_labels,
    plan_al,
    plan_sl,
    slot_bounds,
    split_cuts,
)
from iml_tui.errors import UserError


@pytest.mark.parametrize(("d", "n"), [(0.5, 1), (5, 1), (8.5, 1), (10, 1), (10.001, 2), (14.75, 2),
                                      (15, 2), (20, 3), (23.5, 4), (40, 7)])
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


def test_frame_labels_of_the_hb_train_piece_by_hand() -> None:
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
    # ME test piece [10.25, 25]: POS (12,13) -> (1.75, 2.75); (20, 20.5) -> (9.75, 10.25);
    # UNK (15, 16) -> (4.75, 5.75)
    events = [Event(s, e, 0, True) for s, e in ME_POS] + [Event(15.0, 16.0, 0, False)]
    piece = clip_events(events, 10.25, 25.0)
    assert [(e.start, e.end, e.positive) for e in piece] == [
        (1.75, 2.75, True), (9.75, 10.25, True), (4.75, 5.75, False)]
    lab = piece_frame_labels(piece, 14.75, 1)
    assert lab.shape == (2, 32, 1)
    assert _slots(lab, 0) == [5, 6, 7, 8, 30, 31]
    assert _slots(lab, 1) == [14, 15, 16]


def test_multilabel_slots_and_zero_length_event() -> None:
    events = [Event(0.0, 0.1, 0, True), Event(0.0, 0.1, 1, True), Event(0.32, 0.32, 1, True)]
    lab = piece_frame_labels(events, 3.0, 2)
    assert _slots(lab, 0, 0) == [0]
    assert _slots(lab, 0, 1) == [0, 1]  # the point at 0.32 s lies in slot 1 [0.315, 0.635)


def test_split_cuts_by_hand() -> None:
    hb = [(float(s), float(e)) for s, e in HB_POS]
    assert split_cuts(hb, 40.0, (0.70, 0.85)) == pytest.approx([23.5, 31.5])
    me = [(float(s), float(e)) for s, e in ME_POS]
    assert split_cuts(me, 25.0, (0.70, 0.85)) == pytest.approx([7.5, 10.25])
    assert split_cuts([(2.0, 3.0)], 12.0, (0.70, 0.85)) == pytest.approx([7.5, 7.5])
    assert split_cuts([], 20.0, (0.70, 0.85)) == pytest.approx([14.0, 17.0])
    assert split_cuts([(1.0, 3.0), (8.0, 10.0), (17.0, 17.5)], 20.0, (0.8,)) == \
        pytest.approx([13.5])
    # unsorted input and events past the end of the audio
    assert split_cuts([(8.0, 10.0), (1.0, 3.0), (30.0, 31.0)], 20.0, (0.5,)) == \
        pytest.approx([5.5])


def test_clip_events_crossing_a_cut_land_in_both_pieces() -> None:
    ev = [Event(1.0, 8.0, 0, True), Event(7.0, 8.5, 0, True)]
    assert [(e.start, e.end) for e in clip_events(ev, 0.0, 7.5)] == [(1.0, 7.5), (7.0, 7.5)]
    assert [(e.start, e.end) for e in clip_events(ev, 7.5, 10.25)] == [(0.0, 0.5), (0.0, 1.0)]
    assert clip_events(ev, 10.25, 25.0) == []


HEAD = "Audiofilename,Starttime,Endtime"


@pytest.mark.parametrize(("text", "validation", "needle"), [
    ("Audiofilename,Starttime,CLS\na.wav,1,POS\n", False, "line 1: missing column(s) Endtime"),
    (f"{HEAD}\na.wav,1,2\n", False, "line 1: no class column"),
    (f"{HEAD},X\na.wav,1,2,POS\n", True, "expected the single column Q"),
    (f"{HEAD},Q\na.wav,1,2,POS\na.wav,abc,3,POS\n", True, "line 3: bad Starttime 'abc'"),
    (f"{HEAD},Q\na.wav,-1,2,POS\n", True, "line 2: bad Starttime '-1'"),
    (f"{HEAD},Q\na.wav,1,nan,POS\n", True, "line 2: bad Endtime 'nan'"),
    (f"{HEAD},Q\na.wav,5,2,POS\n", True, "line 2: Endtime 2 < Starttime 5"),
    (f"{HEAD},A,B\na.wav,1,2,POS,MAYBE\n", False, "line 2: value 'MAYBE' in column B"),
    (f"{HEAD},A,B\na.wav,1,2,POS\n", False, "line 2: 4 fields, expected 5"),
])
def test_malformed_annotation_names_file_and_line(text: str, validation: bool,
                                                   needle: str) -> None:
    with pytest.raises(UserError) as err:
        parse_annotation(text, "src.zip:Development_Set/Validation_Set/HB/x.csv", validation)
    assert str(err.value).startswith("src.zip:Development_Set/Validation_Set/HB/x.csv: ")
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_annotation_values_blank_lines_and_bom() -> None:
    ann = parse_annotation(f"\ufeff{HEAD},A,B\r\na.wav,1,2,POS,\n\n a.wav ,3.5,4, unk ,NEG\n",
                           "x.csv", validation=False)
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
        ("HB", "HB_one"), ("ME", "ME1"), ("RD", "rd_1")]
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
        (0.5, 1.5, True), (2.0, 3.0, True), (4.0, 5.0, False), (9.0, 10.0, True)]
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
