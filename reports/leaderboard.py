"""The leaderboard and history Parquet files: schema, atomic writes, reading back, printing.

``leaderboard.parquet`` has one row per trial, ``history.parquet`` one row per (trial, epoch). Both carry
``schema_version`` in the file metadata. Files are written to a temporary name in the same directory and
renamed over the old one, so a reader (or a crash) never sees a half-written file.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = "1"
LEADERBOARD = "leaderboard.parquet"
HISTORY = "history.parquet"
STATUS = "status.json"

# Column -> Arrow type, in display order. Hyperparameter and proxy_<name> columns are added per run.
LEADERBOARD_COLUMNS: dict[str, pa.DataType] = {
    "trial_id": pa.string(),
    "status": pa.string(),  # completed | stopped (early, by the scheduler) | error | diverged | ensemble
    "method": pa.string(),
    "freeze_depth": pa.int64(),
    "lr": pa.float64(),
    "adv_weight": pa.float64(),
    "proxy": pa.string(),
    "score": pa.float64(),
    "rank": pa.int64(),
    "target_acc": pa.float64(),
    "source_acc": pa.float64(),
    "best_epoch": pa.int64(),
    "epochs": pa.int64(),
    "steps": pa.int64(),  # optimizer steps trained (L-BFGS iterations for a closed-form head)
    "wall_s": pa.float64(),
    "node_ip": pa.string(),
    "node_id": pa.string(),
    "seed": pa.int64(),
    "preprocess": pa.string(),
    "config_hash": pa.string(),
    "versions": pa.string(),
    "started_at": pa.float64(),
    "ended_at": pa.float64(),
    "error": pa.string(),
    "members": pa.string(),  # the ensemble row's member trial ids (status "ensemble")
}
FINISHED = ("completed", "stopped")
SHARED_KNOBS = ("lr", "freeze_depth", "adv_weight")  # the knob columns every leaderboard has


class RunError(ValueError):
    """A directory that is not a readable adaptune run."""


def write_atomic(df: pd.DataFrame, path: str, schema: pa.Schema | None = None) -> None:
    """Write ``df`` as Parquet to ``path`` via a temp file + rename (atomic on POSIX filesystems)."""
    table = pa.Table.from_pandas(df, schema=schema, preserve_index=False)
    metadata = {**(table.schema.metadata or {}), b"schema_version": SCHEMA_VERSION.encode()}
    table = table.replace_schema_metadata(metadata)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".parquet", dir=directory)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json_atomic(data: Any, path: str) -> None:
    """Write JSON via a temp file + rename, like the Parquet files: a reader never sees half of it."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, default=str)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def rank_rows(rows: list[dict[str, Any]]) -> None:
    """Set ``rank`` (1 = best score) on finished rows with a finite score; others get None."""
    scored = [r for r in rows if r["status"] in FINISHED and _finite(r.get("score"))]
    scored.sort(key=lambda r: -r["score"])
    for row in rows:
        row["rank"] = None
    for position, row in enumerate(scored, start=1):
        row["rank"] = position


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def leaderboard_frame(rows: list[dict[str, Any]], param_names: list[str], proxy_names: list[str]) -> pd.DataFrame:
    """Rows -> a DataFrame with the fixed columns, then one column per hyperparameter and per proxy."""
    columns = list(LEADERBOARD_COLUMNS)
    extra = [p for p in param_names if p not in columns] + [f"proxy_{p}" for p in proxy_names]
    frame = pd.DataFrame([{c: row.get(c) for c in columns + extra} for row in rows], columns=columns + extra)
    for name, dtype in LEADERBOARD_COLUMNS.items():
        if pa.types.is_integer(dtype):
            frame[name] = frame[name].astype("Int64")
        elif pa.types.is_floating(dtype):
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        else:
            frame[name] = frame[name].astype("string")
    for name in extra:
        if name.startswith("proxy_"):
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return frame.sort_values("rank", na_position="last", kind="stable").reset_index(drop=True)


def versions_json(versions: dict[str, str]) -> str:
    return json.dumps(versions, sort_keys=True)


def read_json_object(path: str, field: str, expected: str) -> dict[str, Any]:
    """A run's JSON file as a mapping; a binary, truncated or non-object file is one :class:`RunError` line."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as error:  # ValueError covers JSONDecodeError and UnicodeDecodeError
        message = " ".join(str(error).split())[:160]
        raise RunError(f"{field}: {path} is not readable JSON ({message}); expected {expected}") from None
    if not isinstance(data, dict):
        raise RunError(f"{field}: {path} holds {type(data).__name__}; expected {expected}")
    return data


def run_file(directory: str, name: str) -> str:
    """The path of one of a run's files, or a RunError saying why ``directory`` is not a run."""
    path = os.path.join(directory, name)
    if not os.path.isdir(directory):
        raise RunError(f"run: {directory} is not a directory")
    if not os.path.isfile(path):
        raise RunError(f"run: {directory} has no {name}; expected the --out directory of `adaptune search`")
    return path


def read_run(directory: str, name: str = LEADERBOARD) -> pd.DataFrame:
    """Read one of a run's Parquet files, with a clear error for anything that is not a run."""
    path = run_file(directory, name)
    try:
        return pq.read_table(path).to_pandas()
    except (pa.ArrowInvalid, OSError) as error:
        raise RunError(f"run: {path} is not a readable Parquet file ({error})") from None


def schema_version(path: str) -> str | None:
    metadata = pq.read_schema(path).metadata or {}
    value = metadata.get(b"schema_version")
    return value.decode() if value else None


def hyperparameter_columns(df: pd.DataFrame) -> list[str]:
    """The leaderboard's knob columns: the shared ones, then each method's own (added per run)."""
    shared = [c for c in SHARED_KNOBS if c in df.columns]
    own = [c for c in df.columns if c not in LEADERBOARD_COLUMNS and not c.startswith("proxy_")]
    return shared + own


def _knobs(row: pd.Series, columns: list[str]) -> str:
    return " ".join(f"{c}={row[c]:.3g}" if isinstance(row[c], float) else f"{c}={row[c]}"
                    for c in columns if not pd.isna(row[c]))


def _whole(value: Any) -> str:
    return "-" if pd.isna(value) else str(int(value))


def compact_table(df: pd.DataFrame, top: int = 10) -> str:
    """The best ``top`` trials in a terminal's width: rank, method, the knobs it was trained with, the proxy
    score, its best epoch and, when the target is labeled, the oracle accuracy (reporting only)."""
    if df.empty:
        return "(no finished trials yet)"
    # Runs written before a column existed read back without it.
    df = df.reindex(columns=[*df.columns, *(c for c in LEADERBOARD_COLUMNS if c not in df.columns)])
    df = df.sort_values("rank", na_position="last", kind="stable")
    proxy = df["proxy"].dropna().iloc[0] if df["proxy"].notna().any() else "score"
    columns = hyperparameter_columns(df)
    table = pd.DataFrame({
        "rank": df["rank"].map(_whole),
        "method": [f"ensemble of {len(str(m).split(','))}" if s == "ensemble" else method
                   for method, s, m in zip(df["method"], df["status"], df["members"])],
        "hyperparameters": [_knobs(row, columns) for _, row in df.iterrows()],
        proxy: df["score"].map(lambda v: "-" if pd.isna(v) else f"{v:.4g}"),
        "epoch": df["best_epoch"].map(_whole),
    })
    if df["target_acc"].notna().any():
        table["oracle"] = df["target_acc"].map(lambda v: "-" if pd.isna(v) else f"{100 * v:.1f}%")
    ranked = df["status"] != "ensemble"
    shown = pd.concat([table[ranked].head(top), table[~ranked]])
    return shown.to_string(index=False, max_colwidth=80)


def format_table(df: pd.DataFrame, top: int | None, by: str | None, fmt: str) -> str:
    """The leaderboard as a text table, CSV or JSON (records), best first by ``rank`` or ``by`` (descending)."""
    if by is not None:
        if by not in df.columns:
            raise RunError(f"by: unknown column {by!r}; expected one of: {', '.join(df.columns)}")
        df = df.sort_values(by, ascending=by in ("rank", "trial_id"), na_position="last", kind="stable")
    if top is not None:
        df = df.head(top)
    if fmt == "table" and df.empty:
        return "(no finished trials yet)"
    if fmt == "csv":
        return df.to_csv(index=False)
    if fmt == "json":
        return df.to_json(orient="records", indent=2)
    shown = [c for c in df.columns if c not in ("versions", "config_hash", "node_id", "started_at", "ended_at",
                                                "error", "members") and not df[c].isna().all()]
    with pd.option_context("display.max_columns", None, "display.width", 200, "display.float_format",
                           "{:.4g}".format):
        return df[shown].to_string(index=False)
