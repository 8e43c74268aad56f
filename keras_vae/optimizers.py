"""TF1's Adam, with TF1's arithmetic, as a Keras 3 optimizer.

`keras.optimizers.Adam` differs from `tf.compat.v1.train.AdamOptimizer` in
its default epsilon (1e-7, not 1e-8) and in its arithmetic (separate ops, and
`beta ** t` instead of running products), so it drifts away from the original
within a few steps. This optimizer runs the very kernel TF1 ran.
"""

import keras
import tensorflow as tf

from keras_vae import _compat


@keras.saving.register_keras_serializable(package="keras_vae")
class TF1Adam(_compat.ApplyGradientsHook, keras.optimizers.Optimizer):
    """Adam exactly as `tf.compat.v1.train.AdamOptimizer` computes it.

    Each step calls TensorFlow's fused `ResourceApplyAdam` kernel (the one
    TF1's optimizer called), and `beta_1_power` / `beta_2_power` are kept as
    running products, multiplied by the betas after every update, as TF1 keeps
    them. Given the same gradients, variables come out bit for bit the same.

    Args:
        learning_rate: float, the step size. Defaults to `1e-3`.
        beta_1: float, decay of the first-moment estimate. Defaults to `0.9`.
        beta_2: float, decay of the second-moment estimate. Defaults to `0.999`.
        epsilon: float, added to the denominator. Defaults to `1e-8`, TF1's
            value (Keras' own Adam uses `1e-7`).
        name: string, the optimizer's name. Defaults to `"tf1_adam"`.

    Example:

    >>> model = keras_vae.VAE()
    >>> model.compile(optimizer=keras_vae.TF1Adam())  # what compile() picks
    """

    def __init__(
        self,
        learning_rate=1e-3,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        name="tf1_adam",
        **kwargs,
    ):
        if kwargs.get("gradient_accumulation_steps"):
            # Keras applies accumulated gradients every N calls, but the beta
            # powers would advance at every call: not TF1's Adam.
            raise ValueError("TF1Adam does not accumulate gradients: TF1's Adam had no such "
                             "option. Drop gradient_accumulation_steps, or use keras.optimizers"
                             ".Adam. Received: gradient_accumulation_steps="
                             f"{kwargs['gradient_accumulation_steps']!r}")
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def build(self, var_list):
        """Creates the moments of each variable and the two beta powers."""
        if self.built:
            return
        super().build(var_list)
        self._m, self._v = self.add_optimizer_variables(var_list, ["m", "v"])
        # TF1 starts the powers at beta (the power for step 1) and multiplies
        # them by beta after each step, in float32.
        self._beta_1_power = self.add_variable(
            shape=(),
            initializer=keras.initializers.Constant(self.beta_1),
            name="beta_1_power",
            aggregation="only_first_replica",
        )
        self._beta_2_power = self.add_variable(
            shape=(),
            initializer=keras.initializers.Constant(self.beta_2),
            name="beta_2_power",
            aggregation="only_first_replica",
        )

    def update_step(self, gradient, variable, learning_rate):
        """Runs TF1's fused Adam kernel on one variable."""
        index = _compat.variable_index(self, variable)
        scalars = self._scalars or self._adam_scalars(learning_rate, variable.dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable),
            m=_handle(self._m[index]),
            v=_handle(self._v[index]),
            grad=gradient,
            use_locking=False,
            **scalars,
        )

    def _adam_scalars(self, learning_rate, dtype):
        """The kernel's scalar inputs: the beta powers, lr, beta1, beta2, epsilon."""
        return {
            "beta1_power": tf.cast(self._beta_1_power, dtype),
            "beta2_power": tf.cast(self._beta_2_power, dtype),
            "lr": tf.cast(learning_rate, dtype),
            "beta1": tf.cast(self.beta_1, dtype),
            "beta2": tf.cast(self.beta_2, dtype),
            "epsilon": tf.cast(self.epsilon, dtype),
        }

    _scalars = None

    def before_apply(self, trainable_variables):
        """Reads the kernel's scalars once for all ten variables (fewer small ops
        per step), except under a distribution strategy, whose updates run per
        device."""
        if not tf.distribute.has_strategy():
            dtypes = {v.dtype for v in trainable_variables}
            if len(dtypes) == 1:
                self._scalars = self._adam_scalars(self.learning_rate,
                                                   dtypes.pop())

    def after_apply(self):
        """After all variables are updated, advances the powers as TF1's `_finish` did."""
        self._scalars = None
        self._beta_1_power.assign(self._beta_1_power * self.beta_1)
        self._beta_2_power.assign(self._beta_2_power * self.beta_2)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}
        )
        return config


def _handle(variable):
    """The resource handle of a Keras or TensorFlow variable."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle
