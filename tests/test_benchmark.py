"""The benchmark binary runs and prints its table (figures themselves are not asserted: no timed tests)."""
import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from cv_mim.algorithms import config as config_lib
from cv_mim.algorithms import registry
from cv_mim.report import benchmark


@pytest.mark.slow
def test_benchmark_prints_one_table(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "cv_mim.benchmark", "--sections=step,pipeline,inference",
         "--algorithms=cv_mim", "--hidden_dim=32", "--batch_size=16", "--seconds=0.2",
         "--steps_per_call=2",
         "--noxla", f"--json_out={out}"],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = [l for l in proc.stdout.splitlines() if l.startswith("|")]
    assert table[0].startswith("| figure | value | other processes' CPU")
    names = " ".join(table)
    for text in ("fp32 matmul peak (4096²)", "bf16 matmul peak", "step cv_mim fp32",
                 "step cv_mim bf16", "matmul floor cv_mim fp32", "matmul floor cv_mim bf16",
                 "x its fp32 matmul floor", "x its bf16 matmul floor", "x the fp32 step",
                 "target cv_mim fp32", "input pipeline", "SavedModel inference, batch 4096"):
        assert text in names, text
    results = json.loads(out.read_text())
    step = results["step"]["cv_mim/fp32"]
    assert step["ms_per_step"] > 0 and step["matmul_floor_ms"] > 0
    assert step["multiple_of_floor"] == pytest.approx(step["ms_per_step"] / step["matmul_floor_ms"])
    assert results["step"]["cv_mim/bf16"]["speedup_vs_fp32"] == pytest.approx(
        step["ms_per_step"] / results["step"]["cv_mim/bf16"]["ms_per_step"])
    assert results["pipeline"]["headroom"] > 0
    assert set(results["inference"]) == {"1", "256", "4096"}
    with pytest.raises(subprocess.CalledProcessError):
        subprocess.run([sys.executable, "-m", "cv_mim.benchmark", "--sections=nonsense"],
                       check=True, capture_output=True, timeout=300)


def test_step_flop_counts_every_network_call_the_step_makes():
    """The reconstruction baselines decode four times per step (self and cross, both views); CV-MIM
    runs E and the local branch once per view. FLOP = 2 (per MAC) × 3 (fwd + bwd) × Σ rows · in · out."""
    anchor, positive = benchmark.random_pairs(8)
    for name, expected in (("autoencoder", {"encoder": 2, "decoder": 4}),
                           ("cv_mim", {"encoder": 2, "local_branch": 2})):
        tf.keras.utils.set_random_seed(0)
        alg = registry.get_algorithm(config_lib.ModelConfig(algorithm=name, hidden_dim=16)).build()
        calls = benchmark.network_calls(alg, anchor, positive)
        counts = {n: sum(1 for c, _ in calls if c == n) for n in expected}
        assert counts == expected
        assert all(rows == 8 for _, rows in calls)
        by_hand = sum(rows * int(v.shape[0]) * int(v.shape[1]) for n, rows in calls
                      for v in alg.networks[n].trainable_variables
                      if v.path.endswith("kernel") and len(v.shape) == 2)
        assert benchmark.step_flop(alg, calls) == 6 * by_hand
    # The wrappers are removed again: the networks still work and count nothing new.
    assert alg.encoder(anchor, training=False)["pose_embedding"].shape == (8, 32)


def test_peak_memory_is_the_childs_own_not_inherited_from_this_process():
    """ru_maxrss survives fork + exec on Linux, so two children of a big parent both read the parent's
    peak; VmHWM is the child's own. A 300 MB allocation must show, an idle child must not."""
    idle, _ = benchmark.peak_rss_of("pass")
    big, _ = benchmark.peak_rss_of("import numpy as np\nx = np.ones(300 * 2**20 // 8)\nx += 1")
    assert idle < 100 and big - idle > 280, (idle, big)


def test_speed_verdicts_against_the_fp32_floor_on_fake_timings():
    """Issue 17: the authors' step is 177 / 88 fp32 floors; fp32 must be 1.3x faster than it
    (<= 1.548 floors), bf16 2x faster and no slower than the bare fp32 matmuls (<= 1.0 floor)."""
    assert benchmark.SPEED_TARGETS["fp32"][0] == pytest.approx(177 / 88 / 1.3)
    assert benchmark.SPEED_TARGETS["bf16"][0] == 1.0
    v = benchmark.speed_verdicts({"fp32": 154.0, "bf16": 100.0}, 100.0)
    assert v["fp32"]["met"] and v["bf16"]["met"]
    assert v["fp32"]["multiple_of_fp32_floor"] == pytest.approx(1.54)
    v = benchmark.speed_verdicts({"fp32": 156.0, "bf16": 100.5}, 100.0)
    assert not v["fp32"]["met"] and not v["bf16"]["met"]
    # The loaded-machine run of BUILD_NOTES §10 (fp32 433, bf16 305, fp32 floor 347 ms): both met.
    v = benchmark.speed_verdicts({"fp32": 433.0, "bf16": 305.0}, 347.0)
    assert v["fp32"]["met"] and v["bf16"]["met"]
    assert set(benchmark.speed_verdicts({"fp32": 1.0}, 1.0)) == {"fp32"}
    with pytest.raises(ValueError, match="floor must be positive"):
        benchmark.speed_verdicts({"fp32": 1.0}, 0.0)


def test_target_rows_read_the_step_results():
    results = {"step": {"cv_mim/fp32": {"ms_per_step": 160.0, "matmul_floor_ms": 100.0,
                                        "other_cores": 0.0},
                        "cv_mim/bf16": {"ms_per_step": 90.0, "matmul_floor_ms": 40.0,
                                        "other_cores": 0.5}}}
    rows = []
    benchmark.target_rows(rows, results)
    assert [r.value for r in rows] == [pytest.approx(1.6), pytest.approx(0.9)]
    assert "NOT met" in rows[0].note and rows[1].note.startswith("met")
    assert "(NOT clean)" in rows[1].row()
    assert results["targets"]["bf16"]["met"]
    assert results["targets"]["bf16"]["multiple_of_own_floor"] == pytest.approx(90 / 40)
    rows = []
    benchmark.target_rows(rows, {"step": {"dim/fp32": results["step"]["cv_mim/fp32"]}})
    assert rows == []


def test_a_target_the_hardware_cannot_reach_is_called_so():
    """On a CPU without native bf16 (this machine: bf16 4096² matmuls 0.87x fp32) the bare bf16
    matmuls alone exceed the fp32 floor, so the bf16 target is about the hardware, not the step."""
    v = benchmark.speed_verdicts({"fp32": 410.4, "bf16": 371.3}, 301.2,
                                 {"fp32": 301.2, "bf16": 302.6})
    assert v["fp32"]["met"] and v["fp32"]["reachable"]
    assert not v["bf16"]["met"] and not v["bf16"]["reachable"]
    assert v["bf16"]["multiple_of_own_floor"] == pytest.approx(371.3 / 302.6)
    note = benchmark.verdict_note("bf16", v["bf16"])
    assert note.startswith("NOT met, and unreachable on this hardware") and "1.23x its own" in note
    # Native bf16 (the machine: bf16 floor 31 ms of an 88 ms fp32 floor): reachable, and a
    # slow step is then the step's fault.
    v = benchmark.speed_verdicts({"bf16": 95.0}, 88.0, {"bf16": 31.0})
    assert v["bf16"]["reachable"] and not v["bf16"]["met"]
    assert benchmark.verdict_note("bf16", v["bf16"]).startswith("NOT met (")


def test_the_heading_names_the_device_the_figures_ran_on(monkeypatch):
    info = benchmark.machine_info()
    assert ("no GPU" in benchmark.device_heading(info)) == (not info["gpus"])  # this machine
    gpu = tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: [gpu] if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "get_device_details",
                        lambda device: {"device_name": "NVIDIA A100-SXM4-40GB"})
    info = benchmark.machine_info()
    assert info["gpus"] == ["NVIDIA A100-SXM4-40GB"]
    assert benchmark.device_heading(info).startswith("GPU:0 NVIDIA A100-SXM4-40GB (1 GPU(s)")
