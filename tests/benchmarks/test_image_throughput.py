"""The prepared image-folder throughput benchmark (benchmarks.image_throughput) as a CPU dry run: it must work the
first time it meets a GPU, and its page must carry one row of positive speeds per method."""

from __future__ import annotations

from benchmarks import image_throughput


def test_dry_run_on_cpu_writes_one_row_of_speeds_per_method(tmp_path):
    out = tmp_path / "throughput.md"
    assert image_throughput.main([
        "--device", "cpu", "--methods", "source_only,dann", "--backbone", "lenet", "--image-size", "32",
        "--classes", "2", "--images-per-class", "8", "--steps", "2", "--batch-size", "4", "--loader-workers", "1",
        "--threads", "1", "--out", str(out),
    ]) == 0
    text = out.read_text()
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| ") and "images/s" not in line]
    assert [row[0].removeprefix("| ") for row in rows] == ["source_only", "dann"]
    for row in rows:
        trial, bare, ratio, alone, cpu_trial, cpu_bare = row[1:7]
        for speed in (trial, bare, alone, cpu_trial, cpu_bare):
            assert float(speed.replace(",", "")) > 0
        assert ratio.endswith("x") and float(ratio.removesuffix("x")) > 0
        assert row[7:] == ["-", "- |"]  # peak GPU memory: none on the CPU
    assert "What follows:" in text and "0.9x target" in text
    assert "no GPU" in text and "--device cpu" in text
