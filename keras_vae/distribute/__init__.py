"""Training on several devices or machines with `tf.distribute`.

- `strategies`: the strategy of `keras-vae train --strategy`, which worker is
  the chief, and a lost worker named;
- `join_watchdog`: a deadline for a cluster to form.

A replica's share of the global batch, which the model's own steps need
under any strategy, is `keras_vae.replicas`, beside the model.
"""
