"""Common Voice style LID folders -> prepared utterance splits for ``extract`` (SPEC B).

Source layout: ``<source>/{train,dev,test}/*.mp3`` (wav, flac and ogg too; sub-folders are
searched). The language of a clip is the third ``_`` token of its file name
(``common_voice_hy-AM_123.mp3`` -> ``hy-AM``), or comes from a mapping table (``--languages``):
a CSV or TSV with a file column (``path``, ``file`` or ``filename``: a file name or a path relative
to the source) and a language column (``language``, ``lang`` or ``locale``). Common Voice's own
``*.tsv`` files (``path``, ``locale``) work as mapping tables.

Output: ``<out>/{train,dev,test}/`` split folders (:mod:`iml_tui.data.corpus`) of whole utterances
(T = 1, one-hot labels over the languages of all splits, sorted), ids = the file's path relative to
the source; the audio is not copied (``clips.csv`` holds absolute paths). ``iml-tui extract
--input <out> --out <feat_root>/<feature>`` then writes ``<feature>/{train,dev,test}.h5``, the
layout ``simulate --task lid`` reads.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path, PurePosixPath

import numpy as np

from iml_tui.data.corpus import MANIFEST, ClipRow, SplitInfo, SummaryTable, write_split
from iml_tui.errors import UserError
from iml_tui.provenance import write_manifest

SPLITS: tuple[str, ...] = ("train", "dev", "test")
AUDIO_EXTS: tuple[str, ...] = (".mp3", ".wav", ".flac", ".ogg", ".opus")
FILE_COLUMNS = ("path", "file", "filename")
LANG_COLUMNS = ("language", "lang", "locale")


def language_from_name(name: str) -> str | None:
    """The third ``_`` token of a Common Voice file name, or None when there is none.

    ``common_voice_hy-AM_123.mp3`` -> ``hy-AM``.
    """
    parts = PurePosixPath(name).name.split("_")
    return parts[2] if len(parts) >= 4 and parts[2] else None


def read_language_table(path: str | Path) -> dict[str, str]:
    """``file -> language`` from a CSV / TSV mapping (keys: the file name and the given path)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UserError(
            f"cannot read the language table ({exc.strerror})", path, "check the --languages path"
        ) from exc
    delim = "\t" if path.suffix.lower() == ".tsv" or text.split("\n", 1)[0].count("\t") else ","
    reader = csv.DictReader(text.splitlines(), delimiter=delim)
    fields = [f.strip().lower() for f in (reader.fieldnames or [])]
    fcol = next((c for c in FILE_COLUMNS if c in fields), None)
    lcol = next((c for c in LANG_COLUMNS if c in fields), None)
    if fcol is None or lcol is None:
        raise UserError(
            f"line 1: columns {fields}; need a file column ({'/'.join(FILE_COLUMNS)}) "
            f"and a language column ({'/'.join(LANG_COLUMNS)})",
            path,
            "add a header such as path,language",
        )
    out: dict[str, str] = {}
    for line, rec in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in rec.items()}
        file, lang = row.get(fcol, ""), row.get(lcol, "")
        if not file or not lang:
            raise UserError(
                f"line {line}: empty file or language", path, "fill in or delete that row"
            )
        out[file] = lang
        out.setdefault(PurePosixPath(file).name, lang)
    return out


def prepare_lid(
    source: str | Path, out: str | Path, languages: str | Path | None = None
) -> SummaryTable:
    """Write the utterance splits of a Common Voice style folder; returns utterances per language
    (rows) and split (columns)."""
    source, out = Path(source), Path(out)
    if not source.is_dir():
        raise UserError(
            "source folder not found",
            source,
            "point --source at a folder holding train/, dev/ and test/",
        )
    table = read_language_table(languages) if languages is not None else None
    found = {s: _audio_files(source / s) for s in SPLITS if (source / s).is_dir()}
    if not any(found.values()):
        raise UserError(
            "no audio in train/, dev/ or test/",
            source,
            f"put the clips ({', '.join(AUDIO_EXTS)}) in <source>/train, dev, test",
        )
    langs: dict[str, list[str]] = {}
    for split, files in found.items():
        langs[split] = [_language(source, f, table) for f in files]
    class_list = sorted({lang for values in langs.values() for lang in values})
    counts: dict[str, Counter[str]] = {}
    for split, files in found.items():
        rows = [ClipRow(f.relative_to(source).as_posix(), str(f.resolve())) for f in files]
        lab = np.zeros((len(rows), 1, len(class_list)), dtype=np.uint8)
        for i, lang in enumerate(langs[split]):
            lab[i, 0, class_list.index(lang)] = 1
        info = SplitInfo(
            kind="lid",
            class_list=class_list,
            frames=1,
            mono="first",
            frame_layout="one label per utterance",
            extra={"split": split, "source": str(source.resolve())},
        )
        write_split(out / split, info, rows, lab)
        counts[split] = Counter(langs[split])
    write_manifest(
        out / MANIFEST,
        {
            "format": 1,
            "kind": "lid",
            "source": str(source.resolve()),
            "languages": class_list,
            "language_rule": "mapping table " + str(languages)
            if languages is not None
            else "third '_' token of the file name",
            "splits": {
                s: {"utterances": sum(c.values()), "per_language": dict(sorted(c.items()))}
                for s, c in counts.items()
            },
        },
    )
    splits = list(counts)
    rows_out: list[list[str | int | float]] = [
        [lang, *(counts[s][lang] for s in splits)] for lang in class_list
    ]
    rows_out.append(["utterances", *(sum(counts[s].values()) for s in splits)])
    return SummaryTable(
        f"LID: utterances per language and split ({out})", ["language", *splits], rows_out
    )


def _audio_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in AUDIO_EXTS and not p.name.startswith(".")
    )


def _language(source: Path, f: Path, table: dict[str, str] | None) -> str:
    if table is not None:
        lang = table.get(f.relative_to(source).as_posix()) or table.get(f.name)
        if lang is None:
            raise UserError(
                "file not in the language table", f, "add a row for it to the --languages table"
            )
        return lang
    lang = language_from_name(f.name)
    if lang is None:
        raise UserError(
            "no language in the file name (expected common_voice_<lang>_<id>.mp3)",
            f,
            "rename the file, or give a mapping table with --languages",
        )
    return lang
