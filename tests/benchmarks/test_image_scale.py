"""benchmarks.image_scale without Ray: the folders it builds and the page it writes."""

from __future__ import annotations

import os

from benchmarks import image_scale


def test_folders_are_hard_links_split_over_the_two_domains(tmp_path, monkeypatch):
    monkeypatch.setattr(image_scale, "DISTINCT_PER_CLASS", 2)
    source, target = image_scale.write_folders(str(tmp_path), 40)
    files = [os.path.join(d, f) for folder in (source, target) for d, _, names in os.walk(folder) for f in names]
    assert len(files) == 40 and len(os.listdir(os.path.join(source))) == image_scale.CLASSES
    assert len({os.stat(f).st_ino for f in files}) == 2 * image_scale.CLASSES  # copies share their inode


def test_page_reports_growth_and_the_cache_speed_up():
    gib, peaks = image_scale.GiB, image_scale.MemoryPeaks
    outcomes = [image_scale.Outcome(4000, peaks(gib // 2, gib, 4 * gib), peaks(gib // 2, gib, 4 * gib), 60.0,
                                    [20.0, 1.0]),
                image_scale.Outcome(64000, peaks(gib // 2, int(1.2 * gib), 5 * gib), peaks(gib // 2, 2 * gib, 4 * gib),
                                    900.0, [300.0, 10.0], probe_parts=[(1.0, 250.0, 120, 5.0), (30.0, 4.0, 20, 5.0)])]
    text = image_scale.page(outcomes)
    row = ("| 64,000 | 1.20 | 2.00 | 0.50 | 5.00 | 300.0 | 10.0 | 30x | C 1: 250.0 s / 120 / 5.0 s; "
           "C 30: 4.0 s / 20 / 5.0 s | 900 |")
    assert row in text
    assert "1.20 GiB with 64,000 images, +20% from 4,000" in text and "at most +10% growth, not met" in text
    assert "+1.00 GiB from 4,000 to 64,000 images" in text
    assert "ran 20x to 30x faster than the first (target at least 10x: met)" in text


def test_the_page_command_leaves_out_local_folders(monkeypatch):
    from benchmarks._common import rerun_command

    monkeypatch.setattr("sys.argv", ["image_scale", "--sizes", "4000", "--work", "/scratch/run", "--out=/scratch/p.md"])
    assert rerun_command(locations=("--work", "--out")).endswith(" --sizes 4000")
    assert rerun_command().endswith(" --sizes 4000 --work /scratch/run --out=/scratch/p.md")
