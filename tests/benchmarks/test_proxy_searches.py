"""benchmarks.proxy_searches: reading the skeleton pages' tables and comparing the rules on the same searches."""

from __future__ import annotations

from pathlib import Path

from benchmarks import proxy_searches
from benchmarks._common import md_table, page_table

HEADERS = ["task", "plan", "wall s", "steps", "peak GiB", "recommended", "best trial (oracle)", "LR", "1-NN",
           "beats both"]


def test_the_first_table_of_a_page_is_read_by_its_headers(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text("# title\n\n- command: `x`\n\n" + md_table(
        [["amazon:B->D", "28 x 12 x 100", 115.0, 9885, 5.0, 60.2, 78.6, 76.1, 59.1, "no"]], HEADERS)
        + "\n\n## later\n\n" + md_table([["other", 1]], ["a", "b"]) + "\n")
    rows = page_table(str(page))  # an absolute path is read as it is
    assert rows == [dict(zip(HEADERS, ["amazon:B->D", "28 x 12 x 100", "115.0", "9885", "5.0", "60.2", "78.6",
                                       "76.1", "59.1", "no"]))]


def test_the_summary_weighs_each_rule_on_the_same_searches():
    found = {"sharp": {("a", 0): {"recommended": 60.0, "best": 78.0, "baseline": 76.0},
                       ("b", 0): {"recommended": 90.0, "best": 90.0, "baseline": 80.0}},
             "plain": {("a", 0): {"recommended": 78.0, "best": 79.0, "baseline": 76.0},
                       ("b", 0): {"recommended": 86.0, "best": 88.0, "baseline": 80.0}}}
    rows = proxy_searches.summary(found, [("a", 0), ("b", 0)])
    assert rows == [["sharp", 75.0, 9.0, 18.0, "1 of 2"], ["plain", 82.0, 1.5, 2.0, "2 of 2"]]
