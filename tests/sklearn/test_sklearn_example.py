"""examples/sklearn_pipeline.py runs as a user would run it and does what it says."""

import json
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sklearn_pipeline.py"


def test_sklearn_pipeline_example(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(EXAMPLE), "--out", str(out)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "same predictions = True" in proc.stdout
    results = json.loads((out / "grid_search.json").read_text())
    assert len(results) == 4 and max(r["cv_accuracy"] for r in results) > 0.9
    assert (out / "digits_mlp.safetensors").stat().st_size > 1000
    test_accuracy = float(proc.stdout.split("test accuracy ")[1].split()[0])
    assert test_accuracy > 0.9
