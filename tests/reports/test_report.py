"""`adaptune report`: sections, formats, several runs, runs in progress, bad input, and a real headless browser.

Most tests read the committed real run in tests/fixtures/run-small (see tests/fixtures/README.md); variants
(failed trials, no labels, in progress, other tasks) are copies of it edited in a temporary directory.
"""

import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pandas as pd
import pytest
import yaml

from adaptune.reports import analysis, run_data
from adaptune.reports.proxy_quality import spearman, weighted_spearman
from adaptune.reports.run_dir import RunDir
from adaptune.search.cli import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "run-small"
FILES = ("leaderboard.parquet", "history.parquet", "summary.json", "config.yaml")


def _copy(tmp_path, name="run", task=None):
    out = tmp_path / name
    out.mkdir(parents=True)
    for file in FILES:
        shutil.copy(FIXTURE / file, out / file)
    if task:
        config = yaml.safe_load((out / "config.yaml").read_text())
        (out / "config.yaml").write_text(yaml.safe_dump({**config, "task": task}, sort_keys=False))
    return out


def _board():
    return pd.read_parquet(FIXTURE / RunDir.LEADERBOARD)


def _history():
    return pd.read_parquet(FIXTURE / RunDir.HISTORY)


def _report(dirs, *extra, fmt="html", tmp_path, name=None):
    out = tmp_path / (name or f"report.{fmt}")
    assert main(["report", *map(str, dirs), "--out", str(out), "--format", fmt, *extra]) == 0
    return out.read_text()


def _section(html, title):
    """The HTML between the heading ``title`` and the next heading of the same level."""
    match = re.search(rf"<h([23])[^>]*>{re.escape(title)}</h\1>", html)
    assert match, f"no section {title!r}"
    level = match.group(1)
    end = re.search(rf"<h{level}[ >]", html[match.end() :])
    return html[match.end() : match.end() + end.start() if end else len(html)]


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    return _report([FIXTURE], tmp_path=tmp_path_factory.mktemp("html"))


@pytest.fixture(scope="module")
def run():
    return run_data.load_run(str(FIXTURE))


# -- the fixture itself ------------------------------------------------------------------------------------
def test_fixture_is_a_small_real_run():
    assert sorted(p.name for p in FIXTURE.iterdir()) == sorted(FILES)
    assert sum((FIXTURE / f).stat().st_size for f in FILES) < 100_000
    summary = json.loads((FIXTURE / "summary.json").read_text())
    assert summary["command"][1:3] == ["search", "--task"] and summary["git_revision"]
    board, history = _board(), _history()
    assert len(board) == 12 and set(board["method"]) == {"source_only", "dann", "coral"}
    assert len(history) == int(board["epochs"].sum()) and history["target_acc"].notna().all()


def test_search_records_the_git_revision_for_provenance():
    from adaptune.search.run import git_revision

    revision = git_revision()
    if revision is None:
        pytest.skip("not a git checkout")
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", revision), revision


# -- sections ----------------------------------------------------------------------------------------------
def test_headline_recommends_the_rank_one_trial_beside_the_source_only_baseline(html):
    board = _board()
    best = board[board["rank"] == 1].iloc[0]
    base = board[board["method"] == "source_only"].sort_values("score", ascending=False).iloc[0]
    section = _section(html, "Recommendation")
    assert f"Ship <strong>{best['method']}</strong>" in section
    assert best["trial_id"] in section and f"epoch {int(best['best_epoch'])}" in section
    assert f"{best['score']:.4g}" in section and f"{100 * best['target_acc']:.1f}%" in section
    assert f"lr={best['lr']:.4g}" in section and f"adv_weight={best['adv_weight']:.4g}" in section
    assert "source-only baseline" in section and base["trial_id"] in section
    assert f"{100 * base['target_acc']:.1f}%" in section


def test_selection_rules_per_method_from_the_history(run, html):
    table = analysis.selection_table(run).set_index("method")
    history = _history()
    for method, points in history.groupby("method"):
        by_proxy = points.loc[points["proxy_im"].idxmax()]
        assert table.loc[method, "proxy_pick"] == f"{by_proxy['trial_id']}@{by_proxy['epoch']}"
        assert table.loc[method, "proxy_acc"] == pytest.approx(by_proxy["target_acc"])
        assert table.loc[method, "oracle_acc"] == pytest.approx(points["target_acc"].max())
        assert table.loc[method, "source_acc_acc"] == pytest.approx(
            points.loc[points["source_acc"].idxmax(), "target_acc"]
        )
        assert table.loc[method, "price"] >= 0
    assert table.loc["all methods", "points"] == len(history)
    section = _section(html, "Per-method best under each selection rule")
    for header in ("by im", "by source_acc", "by oracle", "price (oracle − proxy)"):
        assert header in section
    assert section.count("<tr") == 1 + history["method"].nunique() + 1  # header + methods + all methods


def test_proxy_reliability_per_family_with_regret(run, html):
    data = analysis.reliability(run)
    families = data["families"].set_index("family")
    assert set(families.index) == {"adversarial", "finetune", "subspace", "all"}
    history = _history()
    dann = history[history["method"] == "dann"]
    assert families.loc["adversarial", "spearman"] == pytest.approx(spearman(dann["proxy_im"], dann["target_acc"]))
    assert families.loc["all", "weighted_spearman"] == pytest.approx(
        weighted_spearman(history["proxy_im"], history["target_acc"])
    )
    pick = history.loc[history["proxy_im"].idxmax()]
    assert data["regret"] == pytest.approx(history["target_acc"].max() - pick["target_acc"])
    section = _section(html, "Proxy reliability")
    assert "weighted Spearman" in section and "regret" in section
    assert section.count("<svg") == 3  # one scatter per family
    assert f"{100 * data['regret']:+.1f} pp" in section
    assert "top-1 regret" in section and ">snd<" in section  # every proxy's quality table


def test_search_behaviour_history_timeline_and_stopped_trials(run, html):
    order = analysis.trial_order(run)
    assert list(order["number"]) == list(range(1, 13))
    assert order["started_at"].is_monotonic_increasing
    assert order["best_so_far"].dropna().is_monotonic_increasing
    section = _section(html, "Search behaviour")
    for title in ("Optimization history", "Best so far over time", "Trials over time per node"):
        assert title in section
    stopped = _board().query("status == 'stopped'")
    assert len(stopped) > 0
    for trial_id in stopped["trial_id"]:
        assert trial_id in section
    assert "early-stopped by the scheduler" in section and "ranked on im" in section


def test_failed_diverged_and_retried_trials_say_why(tmp_path):
    out = _copy(tmp_path)
    board = _board()
    ids = list(board["trial_id"])
    board.loc[0, ["status", "error", "score", "rank"]] = ["error", "RuntimeError: CUDA out of memory", None, None]
    board.loc[1, ["status", "error", "score", "rank"]] = [
        "diverged",
        "Diverged: non-finite loss at epoch 2",
        None,
        None,
    ]
    RunDir(str(out)).write_table(RunDir.LEADERBOARD, board)
    history = _history()
    retried = history[history["trial_id"] == ids[2]].head(1)
    RunDir(str(out)).write_table(RunDir.HISTORY, pd.concat([history, retried], ignore_index=True))
    problems = analysis.problem_trials(run_data.load_run(str(out))).set_index("trial_id")
    assert problems.loc[ids[0], "status"] == "error" and "CUDA out of memory" in problems.loc[ids[0], "reason"]
    assert problems.loc[ids[1], "status"] == "diverged" and "non-finite loss" in problems.loc[ids[1], "reason"]
    assert "retried" in problems.loc[ids[2], "status"] and "reported twice" in problems.loc[ids[2], "reason"]
    section = _section(_report([out], tmp_path=tmp_path), "Search behaviour")
    assert "CUDA out of memory" in section and "failed or diverged" in section


def test_importance_per_method_on_its_own_subspace(run, html):
    result = analysis.importances(run)
    subspaces = {
        "coral": {"lr", "coral_reg"},
        "dann": {"lr", "freeze_depth", "adv_weight", "disc_hidden"},
        "source_only": {"lr", "freeze_depth", "backbone_lr_mult"},
    }
    for method, entry in result.items():
        assert entry["importances"], entry
        assert set(entry["importances"]) <= subspaces[method]
        assert sum(entry["importances"].values()) == pytest.approx(1.0)
        assert "freeze_depth" not in entry["importances"]  # constant (0) in this run: not a dimension
    section = _section(html, "Hyperparameters")
    for title in ("slice: lr", "slice: freeze_depth", "slice: adv_weight", "Parallel coordinates"):
        assert title in section
    assert "constant" in section  # freeze_depth never varied


def test_importance_falls_back_with_one_trial_or_constant_params(tmp_path):
    out = _copy(tmp_path)
    board = _board()
    coral = board.index[board["method"] == "coral"]
    board = board.drop(coral[1:])  # one coral trial left
    dann = board["method"] == "dann"
    board.loc[dann, ["lr", "adv_weight", "disc_hidden"]] = [0.01, 1.0, 512.0]  # nothing varies for dann
    RunDir(str(out)).write_table(RunDir.LEADERBOARD, board)
    result = analysis.importances(run_data.load_run(str(out)))
    assert result["coral"]["importances"] == {} and "at least 2" in result["coral"]["reason"]
    assert result["dann"]["importances"] == {} and "no hyperparameter varied" in result["dann"]["reason"]
    assert result["source_only"]["importances"]
    assert "at least 2" in _report([out], tmp_path=tmp_path)


def test_pareto_front():
    cost = pd.Series([1.0, 2.0, 3.0, 0.5, 2.0, float("nan")])
    value = pd.Series([0.5, 0.7, 0.6, 0.2, 0.4, 0.9])
    assert list(analysis.pareto_front(cost, value)) == [True, True, False, True, False, False]


def test_cost_section_marks_the_pareto_front(run, html):
    board = run.scored
    front = analysis.pareto_front(board["wall_s"], board["score"])
    section = _section(html, "Cost")
    assert "vs trial compute" in section and "Pareto front" in section
    for trial_id in board.loc[front, "trial_id"]:
        assert trial_id in section
    assert section.count("<svg") == 2  # proxy score and oracle


def test_provenance(html):
    summary = json.loads((FIXTURE / "summary.json").read_text())
    section = _section(html, "Provenance")
    assert "adaptune search --task synthetic:blobs" in section
    for value in (
        summary["git_revision"],
        summary["config_hash"],
        summary["machine"],
        "ray 2.60",
        "optuna",
        "finished (summary.json written)",
        "12 finished of 12 planned",
        "schema_version",
    ):
        assert value in section, value
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", section)
    assert _board()["node_id"].iloc[0][:8] in section
    assert "config.yaml" in section and "grace_period" in section


def test_html_is_self_contained(html):
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html
    assert not re.search(r"https?://", html, re.IGNORECASE)
    assert not re.search(r"""\bsrc\s*=\s*["']?(?!data:)""", html, re.IGNORECASE)
    assert not re.search(r"<script|<link|@import|url\(|<iframe|<img", html, re.IGNORECASE)
    assert html.count("<svg") >= 12


def test_markdown_has_the_same_sections_as_tables(tmp_path):
    md = _report([FIXTURE], fmt="md", tmp_path=tmp_path)
    for heading in (
        "## Recommendation",
        "## Per-method best under each selection rule",
        "## Proxy reliability",
        "## Search behaviour",
        "## Hyperparameters",
        "## Cost",
        "## Provenance",
    ):
        assert heading in md
    assert "<svg" not in md and "| method | trials | points | by im |" in md
    assert "- chart: " in md and "```yaml" in md
    assert not re.search(r"https?://", md)


def test_several_runs_give_a_cross_task_table_with_published_numbers(tmp_path):
    runs = [
        _copy(tmp_path, name, task)
        for name, task in (("aw", "office-surf:A->W"), ("ad", "office-surf:A->D"), ("wa", "office-surf:W->A"))
    ]
    published = tmp_path / "published.csv"
    published.write_text(
        "method,task,accuracy\ndann,A->W,73.0\ndann,office-surf:A->D,72.3\nDANN,W->A,49.8\n"
        "cdan,A->W,78.3\ndann,C->A,1.0\n"
    )
    html = _report(runs, "--published", str(published), tmp_path=tmp_path)
    section = _section(html, "Across tasks")
    header = re.findall(r"<th>(.*?)</th>", section)
    assert header == ["method", "A-&gt;W", "A-&gt;D", "W-&gt;A", "avg"]  # tasks as columns, average last
    published_table = run_data.load_published(str(published))
    labels, table = analysis.cross_task_table([run_data.load_run(str(r)) for r in runs], published_table)
    table = table.set_index("method")
    best_dann = _board().query("method == 'dann'").sort_values("score", ascending=False).iloc[0]
    assert table.loc["dann", "office-surf:A->W"] == pytest.approx(100 * best_dann["target_acc"])
    assert table.loc["dann", "avg"] == pytest.approx(100 * best_dann["target_acc"])  # the same run three times
    assert list(table.loc["dann (published)", labels]) == pytest.approx([73.0, 72.3, 49.8])
    assert table.loc["dann (published)", "avg"] == pytest.approx((73.0 + 72.3 + 49.8) / 3)
    assert table.loc["cdan (published)", "tasks"] == 1
    assert list(table.index).index("dann (published)") == list(table.index).index("dann") + 1
    assert {"adaptune pick", "oracle best", "coral", "source_only"} <= set(table.index)
    assert "C-&gt;A" in section or "C->A" in section  # the unmatched published task is named
    for i in (1, 2, 3):
        assert f'id="run{i}"' in html
    assert html.count('id="run1-headline"') == 1
    md = _report(runs, "--published", str(published), fmt="md", tmp_path=tmp_path)
    assert "| method | A->W | A->D | W->A | avg |" in md and "| dann (published) | 73.0 | 72.3 | 49.8 | 65.0 |" in md


def test_a_run_in_progress_reports_what_is_finished(tmp_path):
    out = _copy(tmp_path)
    (out / "summary.json").unlink()
    board = _board().sort_values("started_at").head(5)
    RunDir(str(out)).write_table(RunDir.LEADERBOARD, board)
    history = _history()
    RunDir(str(out)).write_table(RunDir.HISTORY, history[history["trial_id"].isin(board["trial_id"])])
    html = _report([out], tmp_path=tmp_path)
    assert "Run in progress" in html and "5 of 12 planned" in html
    assert "in progress or interrupted" in _section(html, "Provenance")
    assert f"Ship <strong>{board.sort_values('score').iloc[-1]['method']}</strong>" in html
    md = _report([out], fmt="md", tmp_path=tmp_path)
    assert "Run in progress" in md
    second = _copy(tmp_path, "other", "synthetic:other")
    cross = _report([out, second], tmp_path=tmp_path, name="cross.html")
    assert "run still in progress" in _section(cross, "Across tasks")


def test_a_run_that_has_just_started(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(FIXTURE / "config.yaml", out / "config.yaml")
    # What the recorder writes before any trial finished.
    RunDir(str(out)).write_table(RunDir.LEADERBOARD, _board().head(0))
    md = _report([out], fmt="md", tmp_path=tmp_path)
    assert "Run in progress" in md and "0 of 12 planned" in md and "No finished trial with a score (im) yet" in md
    assert md.count("No history yet") == 2 and "## Provenance" in md


def test_the_proxy_of_a_run_without_finished_trials_follows_the_search(tmp_path):
    """No leaderboard row names the proxy yet: the summary's (auto resolved), else the config's, else auto's rule."""
    from adaptune.algorithms.proxies import auto_proxy

    out = _copy(tmp_path)
    RunDir(str(out)).write_table(RunDir.LEADERBOARD, _board().head(0))
    assert run_data.load_run(str(out)).proxy == "im"  # config.yaml: proxy: im
    config = yaml.safe_load((out / "config.yaml").read_text())
    (out / "config.yaml").write_text(yaml.safe_dump({**config, "proxy": "auto"}, sort_keys=False))
    assert run_data.load_run(str(out)).proxy == auto_proxy()
    summary = json.loads((out / "summary.json").read_text())
    (out / "summary.json").write_text(json.dumps({**summary, "proxy": "snd", "proxy_requested": "auto"}))
    assert run_data.load_run(str(out)).proxy == "snd"


def test_a_run_without_target_labels(tmp_path):
    out = _copy(tmp_path)
    RunDir(str(out)).write_table(RunDir.LEADERBOARD, _board().assign(target_acc=float("nan")))
    RunDir(str(out)).write_table(RunDir.HISTORY, _history().assign(target_acc=float("nan")))
    html = _report([out], tmp_path=tmp_path)
    assert "no target labels, so no oracle accuracy" in html
    assert "cannot be checked" in _section(html, "Proxy reliability")
    assert _section(html, "Cost").count("<svg") == 1


def test_default_output_path_and_stdout(tmp_path, capsys):
    out = _copy(tmp_path)
    assert main(["report", str(out)]) == 0
    assert (out / "report.html").is_file() and str(out / "report.html") in capsys.readouterr().out
    assert main(["report", str(out), "--out", "-", "--format", "md"]) == 0
    assert capsys.readouterr().out.startswith("# adaptune report: synthetic:blobs")
    assert main(["report", str(out), "--out", str(tmp_path / "r.md")]) == 0  # the format follows the suffix
    assert (tmp_path / "r.md").read_text().startswith("# adaptune report")


def _corrupt(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "case, field",
    [
        ("missing", "run"),
        ("not_a_run", "run"),
        ("corrupt_leaderboard", "run"),
        ("corrupt_history", "run"),
        ("not_parquet", "run"),
        ("foreign_parquet", "run"),
        ("bad_summary", "summary"),
        ("bad_published", "published"),
        ("missing_published", "published"),
        ("out_is_a_dir", "out"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case, field):
    out = _copy(tmp_path)
    args = [str(out)]
    if case == "missing":
        args = [str(tmp_path / "nope")]
    elif case == "not_a_run":
        (tmp_path / "empty").mkdir()
        args = [str(tmp_path / "empty")]
    elif case == "corrupt_leaderboard":
        _corrupt(out / RunDir.LEADERBOARD)
    elif case == "corrupt_history":
        _corrupt(out / RunDir.HISTORY)
    elif case == "not_parquet":
        (out / RunDir.LEADERBOARD).write_text("trial_id,status\n")
    elif case == "foreign_parquet":
        RunDir(str(out)).write_table(RunDir.LEADERBOARD, pd.DataFrame({"x": [1, 2]}))
    elif case == "bad_summary":
        (out / "summary.json").write_text("{not json")
    elif case == "bad_published":
        (tmp_path / "p.csv").write_text("method,task\ndann,A->W\n")
        args += ["--published", str(tmp_path / "p.csv")]
    elif case == "missing_published":
        args += ["--published", str(tmp_path / "none.csv")]
    elif case == "out_is_a_dir":
        args += ["--out", str(tmp_path)]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["report", *args, "--out", str(tmp_path / "r.html")] if case != "out_is_a_dir" else ["report", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"adaptune: error: {field}: "), err
    assert not (tmp_path / "r.html").exists()


# -- a real browser ----------------------------------------------------------------------------------------
def _chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed (CI is set): `make test` installs it with apt-get as root")
    pytest.skip("chromium is not installed (`apt-get install chromium`; required when CI is set)")


def _browse(chromium, page, png):
    """Load ``page`` headless; return (console lines, DOM, exit code)."""
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            f"--screenshot={png}",
            "--dump-dom",
            "--window-size=1200,2000",
            "--enable-logging=stderr",
            "--v=0",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    console = [line for line in result.stderr.splitlines() if re.search(r":CONSOLE[(:]", line)]
    return console, result.stdout, result.returncode


def _png_rgb_stats(path):
    """(distinct colours in a sample, share of pixels that differ from the most common one) of an RGB(A) PNG."""
    try:
        from PIL import Image  # installed with torchvision
    except ImportError:  # stdlib decoder: 8-bit RGB/RGBA, non-interlaced (what Chromium writes)
        counts = {}
        for pixel in _decode_png(path):
            counts[pixel] = counts.get(pixel, 0) + 1
        counts = list(counts.values())
    else:
        with Image.open(path) as image:
            counts = [n for n, _ in image.convert("RGB").getcolors(maxcolors=1 << 24)]
    return len(counts), 1 - max(counts) / sum(counts)


def _decode_png(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, color_type, _, _, interlace = header
    assert depth == 8 and color_type in (2, 6) and interlace == 0
    bpp = 3 if color_type == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    previous, pixels = bytearray(stride), []
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        pixels += [tuple(line[x * bpp : x * bpp + 3]) for x in range(0, width, 4)]  # every 4th pixel is enough
        previous = line
    return pixels


def test_headless_chromium_renders_the_report_without_console_errors(tmp_path):
    chromium = _chromium()
    page = tmp_path / "report.html"
    assert main(["report", str(FIXTURE), "--out", str(page)]) == 0
    console, dom, code = _browse(chromium, page, tmp_path / "shot.png")
    assert code == 0 and console == [], console
    assert "Recommendation" in dom and dom.count("<svg") >= 12 and "</html>" in dom
    colours, ink = _png_rgb_stats(tmp_path / "shot.png")
    assert colours > 50 and ink > 0.05, (colours, ink)  # text, tables and charts, not a blank page

    # The check itself works: a page with a script error is caught.
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><html><body><p>x</p><script>undefinedFunction()</script></body></html>")
    console, _, _ = _browse(chromium, broken, tmp_path / "broken.png")
    assert any("undefinedFunction" in line for line in console), console


def test_without_chromium_the_browser_check_skips_but_fails_under_ci(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="chromium is not installed"):
        _chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        _chromium()


def test_an_ensemble_row_is_shown_but_not_taken_for_a_trial(tmp_path):
    out = _copy(tmp_path)
    board = _board()
    top = board.sort_values("rank").head(3)
    ensemble = {
        "trial_id": "ensemble-top3",
        "status": "ensemble",
        "method": "ensemble",
        "proxy": "im",
        "score": 0.5,
        "target_acc": 0.42,
        "members": ",".join(top["trial_id"]),
    }
    RunDir(str(out)).write_table(RunDir.LEADERBOARD, pd.concat([board, pd.DataFrame([ensemble])], ignore_index=True))
    run = run_data.load_run(str(out))
    assert len(run.board) == 12 and list(run.extra["trial_id"]) == ["ensemble-top3"]
    assert "ensemble" not in analysis.importances(run) and analysis.problem_trials(run)["status"].eq("stopped").all()
    headline = _section(_report([out], tmp_path=tmp_path), "Recommendation")
    assert "ensemble ensemble-top3 (not ranked)" in headline and "42.0%" in headline
    assert top["trial_id"].iloc[0] in headline


def test_a_run_that_recommends_its_ensemble_says_to_ship_it_and_names_the_best_single_trial(tmp_path):
    out = _copy(tmp_path)
    board = _board()
    top = board.sort_values("rank").head(3)
    ensemble = {"trial_id": "ensemble-top3", "status": "ensemble", "method": "ensemble", "proxy": "im", "score": 0.5,
                "target_acc": 0.42, "members": ",".join(top["trial_id"])}
    RunDir(str(out)).write_table(RunDir.LEADERBOARD, pd.concat([board, pd.DataFrame([ensemble])], ignore_index=True))
    summary = json.loads((out / "summary.json").read_text())
    recommended = {"kind": "ensemble", "trial_id": "ensemble-top3", "members": list(top["trial_id"]),
                   "methods": list(top["method"]), "proxy": "im", "score": 0.5, "target_acc": 0.42}
    (out / "summary.json").write_text(json.dumps({**summary, "recommendation": recommended}))
    headline = _section(_report([out], tmp_path=tmp_path), "Recommendation")
    assert "Ship the ensemble <strong>ensemble-top3</strong>" in headline and "42.0%" in headline
    for trial_id, method in zip(top["trial_id"], top["method"]):
        assert f"<code>{trial_id}</code> {method}" in headline
    assert f"The best single trial, to ship one model: <strong>{top['method'].iloc[0]}</strong>" in headline
    assert f"Ship <strong>{top['method'].iloc[0]}</strong>" not in headline
    assert "neighbours" not in headline  # a plain average (a run from before smoothing, or images)
    smoothed = {**recommended, "smoothing": {"neighbours": 10, "weight": 0.5}}
    (out / "summary.json").write_text(json.dumps({**summary, "recommendation": smoothed}))
    headline = _section(_report([out], tmp_path=tmp_path, name="smoothed.html"), "Recommendation")
    assert "each at its best checkpoint, smoothed over 10 target neighbours (weight 0.5)" in headline
    assert "smoothing.md" in headline

    best = top.iloc[0]  # recommend: single names the best trial, and the headline ships it
    single = {"kind": "trial", "trial_id": best["trial_id"], "method": best["method"], "proxy": "im",
              "score": best["score"], "target_acc": best["target_acc"]}
    (out / "summary.json").write_text(json.dumps({**summary, "recommendation": single}))
    headline = _section(_report([out], tmp_path=tmp_path, name="plain.html"), "Recommendation")
    assert f"Ship <strong>{top['method'].iloc[0]}</strong>" in headline


def test_user_names_are_escaped_in_markdown_and_an_unwritable_out_is_one_line(tmp_path, capsys):
    hostile = "<img src=x onerror=alert(1)>"
    out = _copy(tmp_path, task=hostile)
    md = _report([out], fmt="md", tmp_path=tmp_path)
    rendered = re.sub(r"```.*?```", "", md, flags=re.S)  # code fences show their text as is, never as HTML
    assert hostile not in rendered and "&lt;img src=x onerror=alert(1)>" in rendered
    assert hostile not in _report([out], tmp_path=tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(out), "--out", "/proc/adaptune/r.html"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and err[0].startswith("adaptune: error: out:"), err
