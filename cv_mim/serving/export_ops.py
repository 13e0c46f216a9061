"""Op allow-list of SavedModels: an export is a program, so check what it may run before loading it.

A SavedModel's functions can hold any TensorFlow op — ``ReadFile``/``WriteFile``, ``PyFunc``,
``DecodeCSV`` on a file pattern, ... — and calling a signature (or even loading it) runs them.
:func:`check_export_ops` parses ``saved_model.pb`` with the protobuf definitions only (no graph is
imported, nothing runs) and refuses every op that :mod:`cv_mim.serving.export` does not emit.

The allow-list is what our exporter writes for every algorithm (listed by exporting each one;
``tests/test_export_safety.py`` re-checks that every algorithm's export passes), plus a few pure
element-wise / shape ops an encoder variant could plausibly add. None of them touches files, the
network or Python.

The checkpoint *saver* functions TensorFlow writes into every SavedModel (``__inference__traced_save``
/ ``__inference__traced_restore``, named by the meta graph's ``saver_def``) need ``SaveV2``,
``RestoreV2``, ``MergeV2Checkpoints`` and string ops on the checkpoint path. They cannot be left out of
an export, and TF2's ``tf.saved_model.load`` restores variables from Python, not through them. So those
ops are admitted only inside TensorFlow's saver functions (``__inference__traced_save_*`` /
``__inference__traced_restore_*``) that only the ``saver_def`` nodes reach; the same ops in a top-level
node, or anywhere a graph node, a signature or a function of the object graph can reach, are refused.
A TF1-format SavedModel (no object graph) is refused outright: loading it runs its restore op.
"""
from __future__ import annotations

import os

# Ops of our exports outside the saver (every algorithm; see the module docstring).
EXPORT_OPS = frozenset({
    "AddV2", "All", "Any", "AssignVariableOp", "BiasAdd", "BroadcastTo", "Cast", "Const", "GatherV2",
    "Greater", "Identity", "IsFinite", "LogicalAnd", "MatMul", "Max", "Maximum", "Mul", "NoOp", "Pack",
    "Placeholder", "ReadVariableOp", "RealDiv", "Relu", "Reshape", "Rsqrt", "SelectV2", "Shape",
    "Sqrt", "Square", "StatefulPartitionedCall", "StridedSlice", "Sub", "Sum", "Tanh", "VarHandleOp",
    "VarIsInitializedOp",
})
# Pure tensor ops (no state, files, network or Python) an encoder variant could add.
PURE_OPS = frozenset({
    "Abs", "ConcatV2", "Equal", "Exp", "ExpandDims", "Fill", "GreaterEqual", "IdentityN", "Less",
    "LessEqual", "Log", "LogicalNot", "LogicalOr", "Mean", "Min", "Minimum", "Neg", "OnesLike",
    "PartitionedCall", "Prod", "Range", "Select", "Sigmoid", "Sign", "Softplus", "Squeeze",
    "SquaredDifference", "Tile", "Transpose", "ZerosLike",
})
ALLOWED_OPS = EXPORT_OPS | PURE_OPS
# Admitted only inside the saver functions (see the module docstring).
SAVER_OPS = frozenset({
    "DisableCopyOnRead", "MergeV2Checkpoints", "RestoreV2", "SaveV2", "Select", "ShardedFilename",
    "StaticRegexFullMatch", "StringJoin",
})


def _called_functions(node) -> set:
    """Names of the library functions a NodeDef calls (``f`` of a call, While/If bodies, ...)."""
    names = set()
    for value in node.attr.values():
        if value.HasField("func"):
            names.add(value.func.name)
        names.update(f.name for f in value.list.func)
    return names


def _reachable(roots, calls) -> set:
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in seen or name not in calls:
            continue
        seen.add(name)
        todo.extend(calls[name])
    return seen


def _saver_nodes(meta_graph) -> set:
    saver = meta_graph.saver_def
    names = {saver.restore_op_name, saver.save_tensor_name, saver.filename_tensor_name}
    return {n.split(":")[0].lstrip("^") for n in names if n}


# The names TensorFlow gives the checkpoint saver functions of a TF2 SavedModel.
SAVER_FUNCTION_PREFIXES = ("__inference__traced_save_", "__inference__traced_restore_")


def _object_graph_functions(meta_graph) -> set:
    """Every function the object graph can restore and call (methods, signatures, bare functions)."""
    graph = meta_graph.object_graph_def
    names = set(graph.concrete_functions)
    for node in graph.nodes:
        kind = node.WhichOneof("kind")
        if kind == "function":
            names.update(node.function.concrete_functions)
        elif kind == "bare_concrete_function":
            names.add(node.bare_concrete_function.concrete_function_name)
    return names


def _meta_graph_violations(meta_graph) -> list:
    """(op, where) pairs of one MetaGraphDef that are not allowed."""
    if not meta_graph.HasField("object_graph_def") or not meta_graph.object_graph_def.nodes:
        # A TF1-format SavedModel is loaded by running its saver_def's restore op, i.e. code of the
        # file runs during tf.saved_model.load: never what cv_mim.export writes.
        return [("(TF1 SavedModel without an object graph)", "the meta graph")]
    graph = meta_graph.graph_def
    functions = {f.signature.name: f for f in graph.library.function}
    calls = {name: set().union(*[_called_functions(n) for n in f.node_def] or [set()])
             for name, f in functions.items()}
    saver_nodes = _saver_nodes(meta_graph)
    saver_roots, other_roots = set(), set()
    for node in graph.node:
        (saver_roots if node.name in saver_nodes else other_roots).update(_called_functions(node))
    from_saver = _reachable(saver_roots, calls)
    # Entries of the program: what graph nodes call, what the object graph restores (methods and
    # signatures the loader or a user calls), and every function the saver does not reach.
    program = _reachable(other_roots | _object_graph_functions(meta_graph)
                         | (set(functions) - from_saver), calls)
    # Saver ops only in TensorFlow's own saver functions that nothing else can reach.
    saver_only = {name for name in from_saver - program
                  if name.startswith(SAVER_FUNCTION_PREFIXES)}
    bad = []
    for node in graph.node:  # TF2's loader runs no top-level node: saver ops are never needed here
        if node.op not in ALLOWED_OPS:
            bad.append((node.op, f"graph node {node.name!r}"))
    for name, function in functions.items():
        allowed = ALLOWED_OPS | (SAVER_OPS if name in saver_only else frozenset())
        bad.extend((n.op, f"function {name!r}") for n in function.node_def if n.op not in allowed)
    return bad


def export_violations(export_dir) -> list:
    """(op, where) pairs in ``export_dir/saved_model.pb`` outside the allow-list (empty = safe).

    Raises:
      FileNotFoundError: no ``saved_model.pb``.
      ValueError: the file is not a SavedModel protobuf.
    """
    from google.protobuf import message  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=import-outside-toplevel
    path = os.path.join(os.fspath(export_dir), "saved_model.pb")
    if tf.io.gfile.isdir(path) or not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{export_dir} is not a SavedModel directory (no saved_model.pb)")
    saved_model = saved_model_pb2.SavedModel()
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            saved_model.ParseFromString(f.read())
    except (message.DecodeError, ValueError, RuntimeError) as error:
        raise ValueError(f"{path}: not a readable SavedModel ({error})") from None
    if not saved_model.meta_graphs:
        raise ValueError(f"{path}: a SavedModel without graphs")
    return [v for meta_graph in saved_model.meta_graphs for v in _meta_graph_violations(meta_graph)]


def check_export_ops(export_dir, *, trust_export: bool = False) -> None:
    """Refuses an export whose graphs hold ops outside the allow-list, before anything of it runs.

    Args:
      export_dir: the SavedModel directory.
      trust_export: skip the check (``--trust_export``: the user vouches for the export's source).

    Raises:
      ValueError: disallowed ops (naming the first few and where they are), or an unreadable file.
      FileNotFoundError: no ``saved_model.pb``.
    """
    if trust_export:
        return
    bad = export_violations(export_dir)
    if bad:
        ops = sorted({op for op, _ in bad})
        raise ValueError(
            f"{export_dir}: refusing to load the export: it contains op(s) {ops} that cv_mim.export "
            f"never writes (first in {bad[0][1]}); a SavedModel is a program, so load it only if "
            "you trust its source, with --trust_export")
