"""A run directory, the ``--out`` of ``adaptune search``: the names of its files, and the one place that reads and
writes them.

    config.yaml          the resolved config and its config_hash, written when a search starts; resume reads it
    leaderboard.parquet  one row per finished trial (and the ensemble row), rewritten as trials finish
    history.parquet      one row per (trial, epoch), running trials included
    status.json          the counts `adaptune status` shows, rewritten with the leaderboard
    summary.json         written once the search finished; its absence means running or interrupted
    predictions.parquet  written with it: the recommended target predictions, one row per target sample
    proxies.parquet      written by `adaptune proxies`
    report.html          written by `adaptune report` (report.md for Markdown)
    ray/                 Tune's experiment state and trial checkpoints (ray/tune/; Ray Train runs as
                         ray/train-<trial_id>/), unless `storage:` puts them elsewhere; every checkpoint holds
                         state.pt and target_probs.pt
    features/            the frozen-backbone outputs the run's trials share, unless `feature_cache:` puts them
                         elsewhere; bounded by `feature_cache_max_gb`, and safe to delete (they are recomputed)

The search writes through :class:`RunDir` (search/run.py, search/recorder.py), and every reader goes through it
(``adaptune leaderboard``, ``status``, ``resume``, ``report``, ``proxies``). Every file is written to a temporary
name in the same directory and renamed over the old one, so a reader (or a crash) never sees half a file. The
Parquet files carry ``schema_version`` in their metadata; a reader refuses a version it does not know.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from adaptune.algorithms.atomic import replace_atomically

from .values import one_line

SCHEMA_VERSION = "1"


class RunError(ValueError):
    """A directory that is not a readable adaptune run."""


def write_parquet_atomic(frame: pd.DataFrame, path: str) -> None:
    """``frame`` as Parquet with this schema version in its metadata, written atomically."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"schema_version": SCHEMA_VERSION.encode()})
    replace_atomically(path, lambda tmp: pq.write_table(table, tmp), ".parquet")


def write_json_atomic(data: Any, path: str) -> None:
    """``data`` as indented JSON (anything JSON lacks as its ``str``), written atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w") as handle:
            json.dump(data, handle, indent=2, default=str)

    replace_atomically(path, write, ".json")


def write_text_atomic(text: str, path: str) -> None:
    """UTF-8 ``text``, written atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)

    replace_atomically(path, write, os.path.splitext(path)[1])


def schema_version(path: str) -> str | None:
    """The ``schema_version`` a Parquet file was written with; None for a file without one."""
    return _version_of(pq.read_schema(path))


def _version_of(schema: pa.Schema) -> str | None:
    value = (schema.metadata or {}).get(b"schema_version")
    return value.decode() if value else None


def read_parquet_once(path: str | os.PathLike) -> pa.Table:
    """The Parquet file at ``path``, read through one open handle.

    A live run renames a new leaderboard over the old one as trials finish; reading by path opens the file once
    for its footer and again for its pages, and a rename in between pairs one file's footer with the other's
    pages. One handle keeps reading the file it opened."""
    with open(path, "rb") as handle:
        return pq.read_table(handle)


@dataclass(frozen=True)
class RunDir:
    """The run directory at ``path``: where each of its files is, and reading and writing them."""

    path: str

    CONFIG = "config.yaml"
    LEADERBOARD = "leaderboard.parquet"
    HISTORY = "history.parquet"
    STATUS = "status.json"
    SUMMARY = "summary.json"
    PREDICTIONS = "predictions.parquet"
    PROXY_QUALITY = "proxies.parquet"
    RAY_STORAGE = "ray"  # Tune's storage root when the config sets no ``storage:``
    TUNE_EXPERIMENT = "tune"  # the experiment's folder in a storage root of its own
    FEATURES = "features"  # the frozen-prefix outputs when the config sets no ``feature_cache:``
    # In every trial checkpoint: the predictions apart from the weights, so the ensemble reads them alone.
    CHECKPOINT_STATE = "state.pt"
    CHECKPOINT_PREDICTIONS = "target_probs.pt"
    # What each JSON file holds, for the error that a file is something else.
    _JSON_CONTENTS = {STATUS: "the status object a search writes", SUMMARY: "the JSON object a finished search writes"}

    # -- where -------------------------------------------------------------------------------------------
    def file(self, name: str) -> str:
        """The path of the run's file ``name`` (one of the names above), whether it exists or not."""
        return os.path.join(self.path, name)

    def exists(self, name: str) -> bool:
        return os.path.exists(self.file(name))

    def require(self, name: str) -> str:
        """The path of the run's file ``name``, or a RunError saying why this directory is not a run."""
        if not os.path.isdir(self.path):
            raise RunError(f"run: {self.path} is not a directory; expected the --out directory of `adaptune search`")
        path = self.file(name)
        if not os.path.isfile(path):
            raise RunError(f"run: {self.path} has no {name}; expected the --out directory of `adaptune search`")
        return path

    def report_file(self, fmt: str) -> str:
        """Where ``adaptune report`` writes this run's report by default (``fmt`` html or md)."""
        return self.file(f"report.{fmt}")

    def tune_storage(self, shared: str | None) -> str:
        """Where Ray keeps the experiment state and the trial checkpoints: ``shared`` (the config's ``storage:``,
        a path or a URI) or the run's ``ray/``."""
        return shared.rstrip("/") if shared else self.file(self.RAY_STORAGE)

    def experiment_name(self, shared: str | None, config_hash: str) -> str:
        """The experiment's folder in the storage root. Runs sharing one ``storage:`` location each get their
        own, named after the run directory and the config."""
        return f"{os.path.basename(self.path)}-{config_hash[:8]}" if shared else self.TUNE_EXPERIMENT

    def feature_cache(self, shared: str | None) -> str:
        """Where the trials keep the frozen-prefix outputs: ``shared`` (the config's ``feature_cache:``, reused
        across runs) or the run's ``features/``."""
        return shared or self.file(self.FEATURES)

    # -- tables ------------------------------------------------------------------------------------------
    def read_table(self, name: str, required: Sequence[str] = ()) -> pd.DataFrame:
        """One of the run's Parquet files; a RunError (one line) for a file that is missing, unreadable, of
        another schema version or without a ``required`` column."""
        path = self.require(name)
        try:
            table = read_parquet_once(path)
            frame, version = table.to_pandas(), _version_of(table.schema)
        except (pa.ArrowException, OSError, ValueError) as error:
            raise RunError(f"run: {path} is not a readable Parquet file ({one_line(error)[:200]})") from None
        if version not in (None, SCHEMA_VERSION):
            raise RunError(f"run: {path} has schema_version {version}; expected {SCHEMA_VERSION} (upgrade adaptune "
                           "to read it)")
        missing = [c for c in required if c not in frame.columns]
        if missing:
            raise RunError(f"run: {path} lacks column(s) {', '.join(missing)}; expected a file written by "
                           f"`adaptune search` (schema_version {SCHEMA_VERSION})")
        return frame

    def schema_version(self, name: str) -> str | None:
        return schema_version(self.file(name))

    def write_table(self, name: str, frame: pd.DataFrame) -> None:
        write_parquet_atomic(frame, self.file(name))

    # -- JSON --------------------------------------------------------------------------------------------
    def read_json(self, name: str, field: str = "run") -> dict[str, Any]:
        """The run's JSON file ``name`` as a mapping; a binary, truncated or non-object file is one RunError line
        that starts with ``field``."""
        path, expected = self.require(name), self._JSON_CONTENTS[name]
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError) as error:  # ValueError covers JSONDecodeError and UnicodeDecodeError
            raise RunError(f"{field}: {path} is not readable JSON ({one_line(error)[:160]}); expected {expected}") \
                from None
        if not isinstance(data, dict):
            raise RunError(f"{field}: {path} holds {type(data).__name__}; expected {expected}")
        return data

    def read_summary(self, field: str = "run") -> dict[str, Any] | None:
        """The summary of a finished search; None while it runs, or when it was interrupted."""
        return self.read_json(self.SUMMARY, field) if self.exists(self.SUMMARY) else None

    def write_status(self, status: dict[str, Any]) -> None:
        write_json_atomic(status, self.file(self.STATUS))

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json_atomic(summary, self.file(self.SUMMARY))

    def remove_summary(self) -> None:
        """Mark a finished run as unfinished again (a resume that reruns its failed trials): its summary and the
        predictions written with it go until the search finishes again."""
        os.remove(self.file(self.SUMMARY))
        if self.exists(self.PREDICTIONS):
            os.remove(self.file(self.PREDICTIONS))

    # -- config ------------------------------------------------------------------------------------------
    def write_config(self, config: dict[str, Any]) -> None:
        import yaml

        write_text_atomic(yaml.safe_dump(config, sort_keys=False), self.file(self.CONFIG))

    def read_config(self) -> tuple[dict[str, Any], str | None]:
        """The saved config as a mapping and as the text it was read from; empty and None without the file.

        The search itself reads it back as a search config (search.jobs.load_run_config), with that module's
        checks; this is the plain mapping a report shows."""
        import yaml

        if not self.exists(self.CONFIG):
            return {}, None
        path = self.file(self.CONFIG)
        try:
            with open(path) as handle:
                text = handle.read()
            loaded = yaml.safe_load(text)
        except (OSError, yaml.YAMLError) as error:
            raise RunError(f"config: {path} is not readable YAML ({one_line(error)[:160]})") from None
        return (loaded if isinstance(loaded, dict) else {}), text
