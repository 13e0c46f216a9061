"""The benchmark binary runs and prints its table (figures themselves are not asserted: no timed tests)."""
import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_benchmark_prints_one_table(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "cv_mim.benchmark", "--sections=step,pipeline,inference",
         "--algorithms=cv_mim,dim", "--hidden_dim=32", "--batch_size=16", "--seconds=0.2",
         "--noxla", f"--json_out={out}"],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = [l for l in proc.stdout.splitlines() if l.startswith("|")]
    assert table[0].startswith("| figure | value | other processes' CPU")
    names = " ".join(table)
    for text in ("fp32 matmul peak", "bf16 matmul peak", "step cv_mim fp32", "step cv_mim bf16",
                 "step dim fp32", "input pipeline", "SavedModel inference, batch 4096"):
        assert text in names
    results = json.loads(out.read_text())
    assert results["step"]["cv_mim/fp32"]["ms_per_step"] > 0
    assert results["pipeline"]["headroom"] > 0
    assert set(results["inference"]) == {"1", "256", "4096"}
    with pytest.raises(subprocess.CalledProcessError):
        subprocess.run([sys.executable, "-m", "cv_mim.benchmark", "--sections=nonsense"],
                       check=True, capture_output=True, timeout=300)
