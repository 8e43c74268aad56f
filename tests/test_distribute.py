"""The VAE trains under tf.distribute: two logical CPUs stand in for two GPUs."""

import subprocess
import sys
import textwrap

from tests.conftest import REPO

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    from keras_vae.callbacks import SampleGrid
    from keras_vae.model import VAE

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = VAE()
        model.compile()
    x = np.random.default_rng(0).random((256, 784)).astype(np.float32)
    before = model.Q_W1.numpy()
    model.fit(x, batch_size=64, epochs=2, verbose=0,
              callbacks=[SampleGrid(sys.argv[1], every=4, verbose=False)])
    print(model.optimizer.iterations.numpy(), model.optimizer._beta_1_power.numpy(),
          np.array_equal(before, model.Q_W1.numpy()))
    """
)


def test_fit_under_mirrored_strategy(tmp_path):
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    iterations, beta_1_power, unchanged = run.stdout.split()
    assert iterations == "8"
    assert abs(float(beta_1_power) - 0.9**9) < 1e-6  # advanced once per step
    assert unchanged == "False"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000.png", "001.png"]
