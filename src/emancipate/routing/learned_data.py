"""Labelled routing data: a `prompt` column plus one correctness column per model.

The layout is RouteLLM's (one CSV per subject). Only stdlib `csv` is used so that reading
data never pulls pandas into the gateway's install.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_TRUE = {"true", "1", "1.0", "yes", "y", "t"}
_FALSE = {"false", "0", "0.0", "no", "n", "f"}


class DataError(ValueError):
    """Bad input data; the message names the file, row and column so it can be fixed."""


@dataclass
class Dataset:
    """Prompts with the strong and weak models' correctness, and the file each row came from."""

    prompts: list[str] = field(default_factory=list)
    strong: np.ndarray = field(default_factory=lambda: np.zeros(0))
    weak: np.ndarray = field(default_factory=lambda: np.zeros(0))
    groups: list[str] = field(default_factory=list)  # file stem, e.g. the MMLU subject

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, idx: np.ndarray) -> Dataset:
        """Rows `idx` (an index or boolean array), e.g. one cross-validation fold."""
        idx = np.flatnonzero(idx) if idx.dtype == bool else idx
        return Dataset(
            prompts=[self.prompts[i] for i in idx],
            strong=self.strong[idx],
            weak=self.weak[idx],
            groups=[self.groups[i] for i in idx],
        )


def _parse_bool(value: str, where: str) -> float:
    v = value.strip().lower()
    if v in _TRUE:
        return 1.0
    if v in _FALSE:
        return 0.0
    try:  # scores in [0, 1] (e.g. a judge's probability) are accepted as they are
        f = float(v)
    except ValueError:
        f = -1.0
    if 0.0 <= f <= 1.0:
        return f
    raise DataError(f"{where}: expected True/False or 0/1, got {value!r}")


def expand_paths(paths: list[Path]) -> list[Path]:
    """A path is a CSV file or a directory of CSV files (sorted, not recursive)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() == ".csv" and q.is_file())
            if not found:
                raise DataError(f"{p}: directory holds no .csv file")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"{p}: no such file or directory")
    return out


def read_csvs(paths: list[Path], strong: str, weak: str, *, need_labels: bool = True,
              allow_empty: bool = False) -> Dataset:
    """Read `prompt`, `strong` and `weak` columns from every CSV (other columns are ignored)."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    prompts: list[str] = []
    s_col: list[float] = []
    w_col: list[float] = []
    groups: list[str] = []
    for path in expand_paths(paths):
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            wanted = ["prompt", strong, weak] if need_labels else ["prompt"]
            missing = [c for c in wanted if c not in header]
            if missing:
                raise DataError(
                    f"{path}: missing column(s) {', '.join(map(repr, missing))}; "
                    f"columns are {', '.join(map(repr, header))}"
                )
            for lineno, row in enumerate(reader, start=2):
                prompts.append(row["prompt"] or "")
                groups.append(path.stem)
                if need_labels:
                    where = f"{path}: row {lineno}"
                    s_col.append(_parse_bool(row[strong] or "", f"{where}, column {strong!r}"))
                    w_col.append(_parse_bool(row[weak] or "", f"{where}, column {weak!r}"))
    if not prompts and not allow_empty:
        raise DataError("no rows in " + ", ".join(str(p) for p in paths))
    return Dataset(prompts, np.asarray(s_col, dtype=float), np.asarray(w_col, dtype=float), groups)


def read_prompts(path: Path) -> list[str]:
    """The `prompt` column of one CSV, in order (for `router score`)."""
    return read_csvs([path], "", "", need_labels=False, allow_empty=True).prompts
