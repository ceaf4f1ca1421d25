"""The three folders install as adaptune.search / adaptune.algorithms / adaptune.reports, from a real wheel."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_layout_and_import(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(ROOT)], check=True, timeout=300, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("adaptune-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top_level == {"adaptune"}, top_level
    for data in ("mnist_t10k.npz", "usps.npz", "office_caltech10_surf.npz", "amazon_review_400.npz",
                 "office_caltech10_decaf6.npz", "mnist_usps_jda.npz", "amazon_review_dann_5000.npz",
                 "PROVENANCE_mnist.md", "PROVENANCE_amazon_review_400.md", "PROVENANCE_amazon_review_dann_5000.md"):
        assert f"adaptune/algorithms/datasets/{data}" in names
    assert "entry_points.txt" in " ".join(names)

    # Install the wheel's files alone into a fresh directory and import from there (deps from this venv).
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, timeout=300)
    code = ("import adaptune.search.cli, adaptune.algorithms.data as d, adaptune.reports.leaderboard, sys; "
            "assert d.__file__.startswith(sys.argv[1]), d.__file__; "
            "t = d.load_task('office-surf:A->W'); print(t.num_classes, d.load_task('amazon:B->D').num_classes)")
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run([sys.executable, "-c", code, str(target)], env=env, capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "10 2"
    for name in ("search", "algorithms", "reports"):
        assert not (target / name).exists()
