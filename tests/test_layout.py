"""The package map is a data flow: no import cycles, no upward imports, numpy-only stages stay numpy-only.

Every ``cv_mim`` import (top-level or inside a function) is read from the source with ``ast``, so a
lazy import cannot hide a cycle. The rank of a module is the position of its stage in :data:`ORDER`;
a module may import modules of a strictly earlier stage, its own package's modules (acyclically), and
the leaf utilities. Binaries (``cv_mim/<name>.py``) may import anything but one another.
"""
import ast
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "cv_mim"
# Stages in data-flow order; the later may import the earlier.
ORDER = ("keypoints", "data", "synthetic", "pipeline", "networks", "losses", "algorithms",
         "training", "serving", "downstream", "report")
LEAVES = ("records", "plotting", "checks", "progress")
BINARIES = ("pretrain", "export", "embed", "retrieval", "action_recognition", "view_classification",
            "benchmark", "run_all", "synthesize", "cli")
# networks and losses are one stage (neither imports the other).
RANK = {name: i for i, name in enumerate(ORDER)}
RANK["losses"] = RANK["networks"]
NUMPY_ONLY = ("cv_mim.keypoints.profiles", "cv_mim.keypoints.cameras",
              "cv_mim.keypoints.retrieval_metrics", "cv_mim.keypoints.probe")


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _imports(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cv_mim"):
            for alias in node.names:
                found.add(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("cv_mim")}
    return found


MODULES = dict(_modules())


def _resolve(name):
    """The module an import names (``from cv_mim.a import b`` may name module a.b or symbol b of a)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _graph():
    return {mod: {_resolve(i) for i in _imports(path)} - {mod, "cv_mim", ""}
            for mod, path in MODULES.items()}


def _stage(mod):
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_import_cycles():
    graph = _graph()
    state = {}

    def visit(mod, trail):
        if state.get(mod) == "done":
            return
        if state.get(mod) == "open":
            cycle = trail[trail.index(mod):] + [mod]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        state[mod] = "open"
        for dep in sorted(graph.get(mod, ())):
            visit(dep, trail + [mod])
        state[mod] = "done"

    for mod in sorted(graph):
        visit(mod, [])


def test_every_stage_imports_only_earlier_stages_and_leaves():
    bad = []
    for mod, deps in _graph().items():
        stage = _stage(mod)
        for dep in deps:
            dstage = _stage(dep)
            if stage in BINARIES:
                if dstage in BINARIES and dstage != "cli":
                    bad.append(f"binary {mod} imports binary {dep}")
                continue
            if dstage in LEAVES or dstage == stage:
                continue
            if dstage in BINARIES:
                bad.append(f"library {mod} imports binary {dep}")
            elif stage in LEAVES:
                bad.append(f"leaf utility {mod} imports {dep}")
            elif RANK.get(dstage, 99) >= RANK.get(stage, -1):
                bad.append(f"{mod} ({stage}) imports later stage {dep} ({dstage})")
    assert not bad, "\n".join(sorted(bad))


def test_every_module_belongs_to_a_known_stage():
    unknown = sorted(m for m in MODULES if m != "cv_mim" and _stage(m) not in
                     set(ORDER) | set(LEAVES) | set(BINARIES))
    assert not unknown, f"modules outside the map (add them to ORDER/LEAVES/BINARIES): {unknown}"


def test_numpy_only_stages_do_not_import_tensorflow():
    mods = list(NUMPY_ONLY) + sorted(m for m in MODULES if _stage(m) == "data")
    code = ("import sys\n" + "".join(f"import {m}\n" for m in mods)
            + "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
            "sys.exit(f'imported {bad}' if bad else 0)\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_checker_sees_a_planted_cycle_and_an_upward_import(monkeypatch):
    """The checks above can fail: a fake graph with a cycle and an upward import is reported."""
    fake = {"cv_mim.data.a": {"cv_mim.training.loop"}, "cv_mim.training.loop": {"cv_mim.data.a"}}
    monkeypatch.setattr(sys.modules[__name__], "_graph", lambda: fake)
    with pytest.raises(pytest.fail.Exception, match="import cycle"):
        test_no_import_cycles()
    with pytest.raises(AssertionError, match="imports later stage"):
        test_every_stage_imports_only_earlier_stages_and_leaves()
