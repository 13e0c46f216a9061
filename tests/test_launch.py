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


def test_the_shipped_flagfile_is_the_recipe_the_shipped_encoder_was_trained_with():
    """launch/synthetic_shipped.flags, parsed by the pretraining binary, gives every flag the shipped
    export's metadata records (the world's path compared from its repository-relative part on), so
    the flagfile cannot drift from the encoder it says it reproduces."""
    metadata_path = ROOT / "cv_mim" / "pretrained" / "synthetic_cv_mim" / "cv_mim_export.json"
    recorded = json.loads(metadata_path.read_text())["pretrain_flags"]
    code = ("import json\nfrom absl import flags\nimport cv_mim.pretrain\n"
            "flags.FLAGS(['prog', '--flagfile=launch/synthetic_shipped.flags'])\n"
            "ours = {f.name for m, fs in flags.FLAGS.flags_by_module_dict().items()\n"
            "        if m.startswith('cv_mim') for f in fs}\n"
            "print(json.dumps({k: [str(v), bool(flags.FLAGS[k].present)]\n"
            "                  for k, v in flags.FLAGS.flag_values_dict().items() if k in ours}))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    parsed = json.loads(proc.stdout.strip().splitlines()[-1])
    # A flag added after the shipped run is not in its record: the flagfile must leave it at its
    # default (which, by the rule that a new option's default is the old behaviour, is what ran).
    newer = {k for k in parsed if k not in recorded}
    assert not {k for k in newer if parsed[k][1]}, "the flagfile sets flags the shipped run lacked"
    parsed = {k: value for k, (value, _) in parsed.items() if k in recorded}
    # The world is found by the path's repository-relative part; where the run wrote its checkpoints
    # is not part of the recipe.
    paths = {"data_dir", "model_dir"}
    assert parsed["data_dir"].startswith("runs/"), parsed["data_dir"]
    assert str(recorded["data_dir"]) == parsed["data_dir"] or str(recorded["data_dir"]).endswith(
        "/" + parsed["data_dir"]), recorded["data_dir"]
    # Every other flag of the project's own (absl's built-ins are not the recipe).
    assert len(parsed) > 40
    differ = {k: (recorded[k], parsed[k]) for k in sorted(set(parsed) - paths)
              if str(recorded[k]) != parsed[k]}
    assert not differ, f"launch/synthetic_shipped.flags differs from the shipped run: {differ}"
