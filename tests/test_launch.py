"""Every launch/ flagfile parses with the binary it is written for, and starts with its command."""
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "launch").glob("*.flags"))


def _binary(name):
    """(module to run, module that defines the flags, required extra flags)."""
    if name.startswith(("h36m", "synthetic")):
        return "cv_mim.pretrain", "cv_mim.pretrain", ["--model_dir=/tmp/unused"]
    if name.startswith("penn_view"):
        return ("cv_mim.view_classification", "cv_mim.view_classification",
                ["--output_dir=/tmp/unused"])
    return ("cv_mim.action_recognition", "cv_mim.action_recognition",
            ["--output_dir=/tmp/unused"])


def test_there_is_a_flagfile_per_table():
    names = {f.name for f in FILES}
    for expected in ("h36m.flags", "synthetic.flags", "penn_single_shot.flags", "penn_full.flags",
                     "penn_limited.flags", "penn_view_classification.flags",
                     "ntu_single_shot.flags", "ntu_full_cs.flags", "ntu_full_cv.flags",
                     "ntu_limited.flags", "h36m_ablation_cat.flags", "h36m_ablation_poe.flags",
                     "h36m_ablation_no_inter.flags", "h36m_ablation_no_prior.flags"):
        assert expected in names
    for alg in ("autoencoder", "vae", "beta_vae", "infonce", "dim"):
        assert f"h36m_{alg}.flags" in names and f"synthetic_{alg}.flags" in names


def test_every_flagfile_parses_and_documents_its_command():
    groups = {}
    for path in FILES:
        text = path.read_text()
        assert text.startswith("#"), f"{path.name}: must start with comments giving the command"
        module, flag_module, extra = _binary(path.name)
        assert f"python -m {module} --flagfile=launch/{path.name}" in text.replace("\\\n#", ""), \
            f"{path.name}: the exact command is missing"
        groups.setdefault((flag_module, tuple(extra)), []).append(str(path.relative_to(ROOT)))
    for (flag_module, extra), files in groups.items():
        code = ("import json, sys\nfrom absl import flags\n"
                f"import {flag_module}\n"
                "parsed = {}\n"
                f"for f in {files!r}:\n"
                f"    flags.FLAGS(['prog', '--flagfile=' + f] + {list(extra)!r})\n"
                "    parsed[f] = {k: str(v) for k, v in flags.FLAGS.flag_values_dict().items()}\n"
                "    flags.FLAGS.unparse_flags()\n"
                "print(json.dumps(parsed))\n")
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        parsed = json.loads(proc.stdout.strip().splitlines()[-1])
        assert sorted(parsed) == sorted(files)
        if flag_module == "cv_mim.pretrain":
            assert parsed["launch/h36m.flags"]["num_steps"] == "5000000"
            assert parsed["launch/h36m.flags"]["batch_size"] == "256"
            assert parsed["launch/h36m_vae.flags"]["algorithm"] == "vae"
            assert parsed["launch/h36m_vae.flags"]["fusion"] == "moe"  # inherited
            assert parsed["launch/h36m_ablation_no_inter.flags"]["disentangle_loss_weight"] == "0.0"
