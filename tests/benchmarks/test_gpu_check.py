"""The prepared GPU check (benchmarks.gpu_check) as a CPU dry run: it must work the first time it meets a GPU."""

from __future__ import annotations

from benchmarks import gpu_check


def test_dry_run_on_cpu_writes_one_row_per_method(tmp_path):
    out = tmp_path / "gpu.md"
    gpu_check.main(["--device", "cpu", "--methods", "source_only,dann", "--steps", "2", "--epochs", "2",
                    "--batch-size", "8", "--out", str(out)])
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ") and "samples/s" not in line]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == ["source_only", "dann"]
    for row in rows:
        speed, ratio = row.split(" | ")[1:3]
        assert float(speed.replace(",", "")) > 0 and ratio.endswith("x")
    assert "CPU (dry run, no autocast)" in out.read_text()
