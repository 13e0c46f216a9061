"""The per-replica training step: one AdaGrad per optimizer group, one tape each (§4.2)."""

import contextlib

import tensorflow as tf

from cv_mim.algorithms import contract


class Adagrad(tf.keras.optimizers.Adagrad):
    """Keras 3 AdaGrad whose dense update is TensorFlow's fused kernel ``ResourceApplyAdagradV2``:

        acc ← acc + g²,   w ← w − lr · g / (√acc + ε),

    the update of ``tf.keras.optimizers.Adagrad`` in Keras 2 — the authors' optimizer (initial
    accumulator 0.1, ε = 1e-7; fact sheet §4.5) — in one pass over each variable. Keras 3's own update
    runs five elementwise passes (2.5x the time over CV-MIM's 8.5 M encoder weights, BUILD_NOTES §10)
    and puts ε under the root (w − lr·g/√(acc + ε)), which differs from the authors' by < 1e-7
    relative at acc ≥ 0.1. Same slots and checkpoint layout as Keras' AdaGrad; sparse gradients take
    Keras' path.
    """

    def update_step(self, gradient, variable, learning_rate):
        if isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        accumulator = self._accumulators[self._get_variable_index(variable)]
        var = variable.value if isinstance(variable, tf.keras.Variable) else variable
        acc = accumulator.value if isinstance(accumulator, tf.keras.Variable) else accumulator
        tf.raw_ops.ResourceApplyAdagradV2(
            var=var.handle, accum=acc.handle, lr=tf.cast(learning_rate, var.dtype),
            epsilon=tf.constant(self.epsilon, var.dtype), grad=tf.cast(gradient, var.dtype),
            use_locking=False)


def create_optimizers(algorithm: contract.Algorithm, learning_rate=0.02):
    """One AdaGrad(learning_rate) per optimizer group (§4.2: AdaGrad, lr 0.02), built eagerly
    (:class:`Adagrad`: the authors' update, fused).

    Call inside the strategy scope; building the optimizer state before the first step is required by
    Keras 3 under tf.distribute.
    """
    optimizers = {}
    for group in algorithm.optimizer_groups:
        opt = Adagrad(learning_rate=learning_rate, name=f"{group}_optimizer")
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
