"""The per-replica training step: one AdaGrad per optimizer group, one tape each (§4.2)."""

import contextlib

import tensorflow as tf

from cv_mim.algorithms import contract


def create_optimizers(algorithm: contract.Algorithm, learning_rate=0.02):
    """One AdaGrad(learning_rate) per optimizer group (§4.2: AdaGrad, lr 0.02), built eagerly.

    Call inside the strategy scope; building the optimizer state before the first step is required by
    Keras 3 under tf.distribute.
    """
    optimizers = {}
    for group in algorithm.optimizer_groups:
        opt = tf.keras.optimizers.Adagrad(learning_rate=learning_rate, name=f"{group}_optimizer")
        opt.build(algorithm.group_variables(group))
        optimizers[group] = opt
    return optimizers


@tf.autograph.experimental.do_not_convert
def train_step(algorithm: contract.Algorithm, optimizers, anchor, positive, seed):
    """One step on this replica's share of the batch: shared forward pass, then E → Q → D updates.

    One ``GradientTape`` per optimizer group records the single forward pass; each group's gradient is
    taken of its own ``total_loss`` with respect to its own variables only, so the encoder never
    receives Q's likelihood loss or D's loss, and Q and D never receive the encoder's objective. All
    gradients are computed before any update is applied.

    Args:
      algorithm: a built :class:`Algorithm`.
      optimizers: ``{group: optimizer}`` from :func:`create_optimizers`.
      anchor, positive: [b, J, 2] normalised 2D poses of this replica (two views of the same 3D poses).
      seed: [2] int64 step seed (prior samples and other step randomness).
    Returns:
      The nested dict of losses (global-batch values).
    """
    groups = list(algorithm.optimizer_groups)
    variables = {g: algorithm.group_variables(g) for g in groups}
    with contextlib.ExitStack() as stack:
        tapes = {}
        for g in groups:
            tape = stack.enter_context(tf.GradientTape(watch_accessed_variables=False))
            # Keras 3 variables wrap a tf.Variable; the tape watches the wrapped one.
            tape.watch([v.value for v in variables[g]])
            tapes[g] = tape
        result = algorithm.compute_losses(anchor, positive, seed, training=True)
        # Scaled inside the tapes (an op outside them would not be recorded).
        ctx = tf.distribute.get_replica_context()
        scale = 1.0 / (ctx.num_replicas_in_sync if ctx is not None else 1)
        scaled = {g: result[g]["total_loss"] * scale for g in groups}
    grads = {g: tapes[g].gradient(scaled[g], [v.value for v in variables[g]]) for g in groups}
    for g in groups:
        optimizers[g].apply_gradients(
            [(gr, v) for gr, v in zip(grads[g], variables[g]) if gr is not None])
    return result
