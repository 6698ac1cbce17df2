"""Small generated corpora in the real folder and file layouts (DCASE 2024 Task 5, Common Voice,
VTD), with the hand-checked facts the tests assert.

DCASE development set (``make_dcase_dev``), times in seconds:

Validation_Set (AL; 7-class SPEC order keeps Mosquito, Red_Deer, Meerkat_alarm_call). Cuts by
SPEC D.1: cum = cumulative POS duration in time order, gap = ratio x total, S = events with
cum < gap; |S| >= 2: cut = (end of the one before the last of S + start of the last of S) / 2.
- ``HB/HB-one.wav`` 16 kHz mono, 40 s, Mosquito. POS (2,4) (6,7) (10,12) (11,13) (20,21) (26,28)
  (35,36): durations 2 1 2 2 1 2 1 = 11, cum 2 3 5 7 8 10 11. 70 %: gap 7.7, S = the first four:
  slot [12, 11] (overlapping events), cut 11.5 (inside (10,12) and (11,13)). 85 %: gap 9.35, S =
  the first five: cut (13 + 20) / 2 = 16.5. UNK (23,24) in the test piece. Pieces 11.5 / 5 / 23.5 s
  -> 2 / 1 / 4 clips.
- ``ME/ME1.wav`` 48 kHz, 2 channels (channel 1 silent), 25 s, Meerkat_alarm_call. POS (1,9)
  (7,8.5) (12,13) (20,20.5): 8 1.5 1 .5 = 11, cum 8 9.5 10.5 11; gaps 7.7 / 9.35 give |S| = 0 / 1:
  both cuts by the fallback (end of (12,13) + start of (20,20.5)) / 2 = 16.5; the valid piece is
  empty. UNK (15,16) in the train piece. Pieces 16.5 / 0 / 8.5 s -> 3 / 0 / 1 clips; (20,20.5) ->
  test (3.5,4).
- ``PB/BUK5_20180921_015906a.wav``: the dropped duplicate (its class, Blackbird_call, vanishes).
- ``RD/rd 1.wav`` 32 kHz mono, 12 s, Red_Deer. POS (2,3) only: the one-event fallback 2 + 0.7 =
  2.7 and 2 + 0.85 = 2.85; the event crosses both cuts: (2,2.7), (0,0.15), (0,0.15). UNK (5,6) in
  the test piece. Pieces 2.7 / 0.15 / 9.15 s -> 1 / 1 / 1 clips, all positive.
AL clips: train 2+3+1 = 6, valid 1+0+1 = 2, test 4+1+1 = 6; ME and RD used a fallback.

Training_Set (SL, 80 / 20, per class after the drop and merge):
- ``BV/bv file-1.wav`` 16 kHz, 20 s, codes AAA (Bird one) and BBB (Anas platyrhynchos song,
  dropped). Rows (1,3,POS,NEG) (5,6,UNK,POS) (8,10,POS,NEG) (15,16,NEG,UNK) (17,17.5,POS,NEG):
  POS of Bird_one (1,3) (8,10) (17,17.5), cum 2 4 4.5, gap 3.6, |S| = 1: fallback cut
  (10 + 17) / 2 = 13.5 -> 2 / 1 clips; the valid clip has Bird_one at 3.5-4 s.
- ``HT/h1.wav`` 8 kHz, 11 s, code AAA = Hyena giggle (per dataset): POS (1,2) -> one-event
  fallback 1 + 0.8 = 1.8 -> 1 / 1 clips (train holds (1,1.8)).
- ``WMW/w-1.wav`` 22.05 kHz, 12 s, codes c_4 and c_5, both Tachybaptus ruficollis-song (OR-merged):
  rows (0.5,1.5,POS,NEG) (2,3,NEG,POS) (4,5,UNK,NEG) (6,7,NEG,NEG) (9,10,POS,UNK) -> POS (0.5,1.5)
  (2,3) (9,10), UNK (4,5); cum 1 2 3, gap 2.4, S = the first two: cut (1.5 + 2) / 2 = 1.75 ->
  1 / 2 clips.
SL classes: Bird_one, Hyena_giggle, Tachybaptus_ruficollis_song; clips train 4, valid 4; BV and HT
used a fallback.
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

AL_CLASSES = ["Mosquito", "Red_Deer", "Meerkat_alarm_call"]
SL_CLASSES = ["Bird_one", "Hyena_giggle", "Tachybaptus_ruficollis_song"]

HB_POS = [(2, 4), (6, 7), (10, 12), (11, 13), (20, 21), (26, 28), (35, 36)]
ME_POS = [(1, 9), (7, 8.5), (12, 13), (20, 20.5)]

VALIDATION = {
    # (dataset, file stem): (sr, channels, seconds, class name, rows (start, end, Q))
    ("HB", "HB-one"): (
        16000,
        1,
        40.0,
        "Mosquito",
        [(s, e, "POS") for s, e in HB_POS] + [(23, 24, "UNK")],
    ),
    ("ME", "ME1"): (
        48000,
        2,
        25.0,
        "Meerkat alarm call",
        [(s, e, "POS") for s, e in ME_POS] + [(15, 16, "UNK")],
    ),
    ("PB", "BUK5_20180921_015906a"): (32000, 1, 5.0, "Blackbird call", [(1, 2, "POS")]),
    ("RD", "rd 1"): (32000, 1, 12.0, "Red Deer", [(2, 3, "POS"), (5, 6, "UNK")]),
}
TRAINING = {
    # (dataset, file stem): (sr, seconds, class codes, rows (start, end, values...))
    ("BV", "bv file-1"): (
        16000,
        20.0,
        ["AAA", "BBB"],
        [
            (1, 3, "POS", "NEG"),
            (5, 6, "UNK", "POS"),
            (8, 10, "POS", "NEG"),
            (15, 16, "NEG", "UNK"),
            (17, 17.5, "POS", "NEG"),
        ],
    ),
    ("HT", "h1"): (8000, 11.0, ["AAA"], [(1, 2, "POS"), (3, 4, "NEG")]),
    ("WMW", "w-1"): (
        22050,
        12.0,
        ["c_4", "c_5"],
        [
            (0.5, 1.5, "POS", "NEG"),
            (2, 3, "NEG", "POS"),
            (4, 5, "UNK", "NEG"),
            (6, 7, "NEG", "NEG"),
            (9, 10, "POS", "UNK"),
        ],
    ),
}
TRAINING_TABLE = [
    ("BV", "AAA", "Bird one"),
    ("BV", "BBB", "Anas platyrhynchos song"),
    ("HT", "AAA", "Hyena giggle"),
    ("WMW", "c_4", "Tachybaptus ruficollis-song"),
    ("WMW", "c_5", "Tachybaptus ruficollis-song"),
]


def _signal(
    sr: int, seconds: float, events: list[tuple[float, float]], freq: float, seed: int
) -> np.ndarray:
    """Quiet noise with a tone (0.3 amplitude) during each event; (n,) float32."""
    rng = np.random.default_rng(seed)
    n = round(sr * seconds)
    x = 0.01 * rng.standard_normal(n)
    t = np.arange(n) / sr
    for s, e in events:
        on = (t >= s) & (t < e)
        x[on] += 0.3 * np.sin(2 * np.pi * freq * t[on])
    return x.astype(np.float32)


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def make_dcase_dev(root: Path) -> Path:
    """Write the generated development set under ``root`` (``Development_Set/`` + class tables)."""
    dev = root / "Development_Set"
    for k, ((ds, stem), (sr, ch, secs, _, rows)) in enumerate(VALIDATION.items()):
        folder = dev / "Validation_Set" / ds
        folder.mkdir(parents=True, exist_ok=True)
        pos = [(float(s), float(e)) for s, e, v in rows if v == "POS"]
        x = _signal(sr, secs, pos, 1000.0 + 500 * k, seed=k)
        data = np.stack([x, np.zeros_like(x)], axis=1) if ch == 2 else x
        sf.write(folder / f"{stem}.wav", data, sr, subtype="PCM_16")
        _write_csv(
            folder / f"{stem}.csv",
            ["Audiofilename", "Starttime", "Endtime", "Q"],
            [[f"{stem}.wav", s, e, v] for s, e, v in rows],
        )
    for k, ((ds, stem), (sr, secs, codes, trows)) in enumerate(TRAINING.items()):
        folder = dev / "Training_Set" / ds
        folder.mkdir(parents=True, exist_ok=True)
        pos = [(float(r[0]), float(r[1])) for r in trows if "POS" in r[2:]]
        sf.write(
            folder / f"{stem}.wav",
            _signal(sr, secs, pos, 700.0 + 300 * k, seed=10 + k),
            sr,
            subtype="PCM_16",
        )
        _write_csv(
            folder / f"{stem}.csv",
            ["Audiofilename", "Starttime", "Endtime", *codes],
            [[f"{stem}.wav", *r] for r in trows],
        )
    _write_csv(
        root / "DCASE2024_task5_training_set_classes.csv",
        ["dataset", "class_code", "class_name"],
        [list(r) for r in TRAINING_TABLE],
    )
    _write_csv(
        root / "DCASE2024_task5_validation_set_classes.csv",
        ["dataset", "recording", "class_code", "class_name"],
        [[ds, stem, f"C{k}", v[3]] for k, ((ds, stem), v) in enumerate(VALIDATION.items())],
    )
    return root


def zip_folder(folder: Path, target: Path, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """Zip every file under ``folder`` with paths relative to it."""
    with zipfile.ZipFile(target, "w", compression) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder).as_posix())
    return target


def make_commonvoice(root: Path, ext: str = ".mp3") -> Path:
    """``train/dev/test`` with 1-2 s clips of three languages (``common_voice_<lang>_<id>``)."""
    langs = ["hy-AM", "ka", "tt"]
    k = 0
    for split, per_lang in (("train", 2), ("dev", 2), ("test", 1)):
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        for li, lang in enumerate(langs):
            for _ in range(per_lang):
                x = _signal(16000, 1.0 + 0.25 * (k % 3), [(0.1, 0.9)], 300.0 + 200 * li, seed=k)
                sf.write(folder / f"common_voice_{lang}_{1000 + k}{ext}", x, 16000)
                k += 1
    return root


def make_vtd(root: Path) -> Path:
    """Two environments, two sessions each (22 s: 5 segments, the last partial); labels as .npy
    in ``rm1_mc20`` and as CSV (``segment,label``) in ``hotel_mc19``."""
    for e, env in enumerate(("rm1_mc20", "hotel_mc19")):
        folder = root / env
        folder.mkdir(parents=True, exist_ok=True)
        for s in range(2):
            labels = np.array([1, 0, 1, 1, 0][: 4 + s]) if e == 0 else np.array([0, 1, 0, 1, 1])
            events = [(5.0 * i, 5.0 * i + 4.0) for i, v in enumerate(labels) if v]
            sf.write(
                folder / f"session{s}.wav",
                _signal(16000, 22.0, events, 400.0 + 100 * s, seed=20 + s + 2 * e),
                16000,
            )
            if e == 0:
                np.save(folder / f"session{s}.npy", labels)
            else:
                _write_csv(
                    folder / f"session{s}.csv",
                    ["segment", "label"],
                    [[i, int(v)] for i, v in enumerate(labels)],
                )
    return root
