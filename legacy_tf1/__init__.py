"""The original TF1 MNIST VAE, kept runnable under TensorFlow 2's ``tf.compat.v1``.

This package is the reference the Keras port is measured against. It holds
the seed's script, ported only as far as TensorFlow 2 requires, so a reader
of the original finds the same lines here:

- ``legacy_tf1.input_data``: a stand-in for the removed
  ``tensorflow.examples.tutorials.mnist.input_data`` (``read_data_sets``, its
  own IDX reading and pixel scaling, and ``DataSet.next_batch``, with the
  original's shuffling and epoch wrap-around).
- ``legacy_tf1.vae_tf1``: ``build_graph`` builds the original graph (given
  initial values and a feedable ``eps`` when parity tests need them) and
  ``main`` runs the original training loop
  (``python -m legacy_tf1.vae_tf1 --data-dir DIR``).

It imports only TensorFlow and NumPy, never ``keras_vae``: an oracle that
shared the port's code would share its bugs. Nothing is imported here, so
importing the package does not load TensorFlow.
"""
