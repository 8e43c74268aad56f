"""keras_vae.evaluation.plots: each picture holds what it says, pixel for pixel where it
is drawn so, at its documented size."""

import statistics

import keras
import matplotlib
import matplotlib.image
import numpy as np
import pytest

import keras_vae
from keras_vae import parity
from keras_vae.data.idx import read_mnist, scale_pixels
from keras_vae.evaluation import plots

SIDE = 28


def numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


def vae(z_dim):
    keras.utils.set_random_seed(0)
    return keras_vae.VAE(h_dim=16, z_dim=z_dim, seed=0)


@pytest.fixture(scope="module")
def model():
    return vae(z_dim=2)


@pytest.fixture(scope="module")
def model5():
    return vae(z_dim=5)


@pytest.fixture(scope="module")
def mnist(synthetic_mnist_dir):
    images, labels = read_mnist(synthetic_mnist_dir, "test[:200]")
    return scale_pixels(images), labels


def read_grey(path):
    """The PNG at `path` as one grey channel, checking R = G = B and opacity."""
    png = matplotlib.image.imread(path)
    assert png.ndim == 3 and png.shape[2] == 4
    np.testing.assert_array_equal(png[..., 0], png[..., 1])
    np.testing.assert_array_equal(png[..., 0], png[..., 2])
    assert (png[..., 3] == 1).all()
    return png[..., 0]


def tile(canvas, row, col):
    """The image at `row`, `col` of a pixel-exact picture, flattened."""
    pitch = SIDE + plots.SEPARATOR
    return canvas[row * pitch:row * pitch + SIDE, col * pitch:col * pitch + SIDE].ravel()


def assert_drawn(grey, expected):
    # A PNG stores the nearest of 256 greys: within 0.5/255 (+1e-6 for the
    # float32 of reading it back) of the values drawn.
    np.testing.assert_allclose(grey, expected, rtol=0, atol=plots.PNG_TOLERANCE)


# float32's unit roundoff: one rounding errs by at most U times the value.
U = 2.0**-24


def encode64(model, x):
    """z_mu of `x` in float64 NumPy from the formulas, with `model`'s weights."""
    w = {k: v.astype(np.float64) for k, v in parity.get_tf1_weights(model).items()}
    h = np.maximum(np.asarray(x, np.float64) @ w["Q_W1"] + w["Q_b1"], 0)
    return h @ w["Q_W2_mu"] + w["Q_b2_mu"]


def decode64(model, z):
    """P(X|z)'s probabilities in float64 NumPy from the formulas."""
    w = {k: v.astype(np.float64) for k, v in parity.get_tf1_weights(model).items()}
    h = np.maximum(np.asarray(z, np.float64) @ w["P_W1"] + w["P_b1"], 0)
    return 1 / (1 + np.exp(-(h @ w["P_W2"] + w["P_b2"])))


def assert_within_rounding(value, here, exact, name=""):
    """`value` (computed by `plots`, maybe in another batch, so by other
    kernels) is `exact` (in float64) but for float32 rounding, as `here`
    (the same quantity computed here) is. `here`'s error, in norm, is checked
    to be rounding (~1e-7 relative; other weights or inputs are ~1e-2 away);
    the same sums in another order err by as much (0.6x to 1.2x measured,
    tests/distribute/test_distribute.py's `_within_rounding`): 4x, and 16 U of
    the value for an error small by chance."""
    scale = np.linalg.norm(exact)
    error_here = np.linalg.norm(np.asarray(here, np.float64) - exact)
    assert error_here <= 2**-16 * scale, (name, "here", error_here / scale)
    error = np.linalg.norm(np.asarray(value, np.float64) - exact)
    assert error <= 4 * error_here + 16 * U * scale, (name, error / scale, error_here / scale)


def test_reconstructions_show_the_inputs_above_their_reconstructions(model, mnist, tmp_path):
    images = mnist[0][:10]
    path = tmp_path / "made" / "by" / "plots" / "reconstructions.png"
    canvas = plots.reconstructions(model, images, path)

    grey = read_grey(path)
    assert grey.shape == canvas.shape == (2 * SIDE + 2, 10 * SIDE + 9 * 2) == (58, 298)
    assert_drawn(grey, canvas)
    # The canvas holds the inputs as they are, and their reconstructions.
    drawn = np.stack([tile(canvas, 1, j) for j in range(10)])
    exact = decode64(model, encode64(model, images))
    assert_within_rounding(drawn, numpy(model.reconstruct(images)), exact)
    for j in range(10):
        np.testing.assert_array_equal(tile(canvas, 0, j), images[j])
        assert_drawn(tile(grey, 0, j), images[j])
    assert_drawn(grey[SIDE:SIDE + 2], plots.SEPARATOR_GREY)  # between the rows
    assert np.ptp(grey) > 0.5
    assert sorted(p.name for p in path.parent.iterdir()) == ["reconstructions.png"]


def test_the_png_round_trip_is_within_the_documented_tolerance(model, tmp_path):
    # Every value in [0, 1], the worst cases of rounding to 8 bits included.
    values = np.linspace(0, 1, 784 * 40, dtype=np.float32).reshape(40, 784)
    values[0] = (np.arange(784) % 256 + 0.4999) / 255
    canvas = plots.reconstructions(model, np.clip(values, 0, 1), tmp_path / "r.png")
    errors = np.abs(read_grey(tmp_path / "r.png") - canvas)
    assert errors.max() <= plots.PNG_TOLERANCE
    assert errors.max() > 0.49 / 255  # the tolerance is not looser than it needs


def test_images_that_are_not_square_are_refused(tmp_path):
    model = keras_vae.VAE(x_dim=10, h_dim=4, z_dim=2, seed=0)
    with pytest.raises(ValueError, match="x_dim=10 is not a perfect square"):
        plots.reconstructions(model, np.zeros((3, 10), np.float32), tmp_path / "r.png")
    assert not (tmp_path / "r.png").exists()


def test_interpolation_walks_in_z_from_one_code_to_the_other(model5, mnist, tmp_path):
    first, second = mnist[0][0], mnist[0][1]
    canvas, decoded = plots.interpolation(model5, first, second, tmp_path / "i.png")

    z_first = numpy(model5.encode(first[None])[0])
    z_second = numpy(model5.encode(second[None])[0])
    assert decoded.shape == (10, 784)
    # Each point of the walk decoded alone here, in a batch of 10 there, and
    # in float64 from the images: the same but for float32 rounding.
    t = np.float32(np.arange(10) / 9)[:, None]
    expected = np.concatenate([numpy(model5.decode((1 - t[k]) * z_first + t[k] * z_second)[0])
                               for k in range(10)])
    exact_first, exact_second = encode64(model5, [first, second])
    exact = decode64(model5, (1 - t) * exact_first + t * exact_second)
    assert_within_rounding(decoded, expected, exact, "walk")
    ends = numpy(model5.decode(np.concatenate([z_first, z_second]))[0])
    assert_within_rounding(decoded[[0, -1]], ends, exact[[0, -1]], "ends")

    grey = read_grey(tmp_path / "i.png")
    assert grey.shape == canvas.shape == (SIDE, 10 * SIDE + 9 * 2)
    assert_drawn(grey, canvas)
    for k in range(10):
        np.testing.assert_array_equal(tile(canvas, 0, k), decoded[k])
    for k in range(1, 9):
        for end in decoded[[0, -1]]:
            assert np.abs(tile(grey, 0, k) - end).max() > 2 / 255
    assert np.ptp(grey) > 0.5


def test_manifold_decodes_the_prior_quantiles_with_z1_growing_upwards(model, tmp_path):
    n = 5
    canvas = plots.manifold(model, tmp_path / "m.png", n=n)

    grey = read_grey(tmp_path / "m.png")
    assert grey.shape == canvas.shape == (n * SIDE + (n - 1) * 2,) * 2 == (148, 148)
    assert_drawn(grey, canvas)
    q = [statistics.NormalDist().inv_cdf(p) for p in (0.05, 0.275, 0.5, 0.725, 0.95)]
    corners = {(0, 0): (q[0], q[-1]), (0, n - 1): (q[-1], q[-1]),
               (n - 1, 0): (q[0], q[0]), (n - 1, n - 1): (q[-1], q[0]),
               (2, 2): (0.0, 0.0)}
    # Each corner's tile: decoded in a batch of 25 there, alone here, and in
    # float64: the same but for float32 rounding.
    z = np.array(list(corners.values()), np.float32)
    here = np.concatenate([numpy(model.decode(z[i:i + 1])[0]) for i in range(len(z))])
    drawn = np.stack([tile(canvas, row, col) for row, col in corners])
    assert_within_rounding(drawn, here, decode64(model, z))
    tiles = [tile(grey, i, j) for i in range(n) for j in range(n)]
    for a in range(len(tiles)):
        for b in range(a):
            assert np.abs(tiles[a] - tiles[b]).max() > 0
    assert np.ptp(grey) > 0.5


def test_manifold_needs_a_2d_latent(model5, tmp_path):
    with pytest.raises(ValueError, match=r"--z-dim 2.*z_dim=5.*plot latent"):
        plots.manifold(model5, tmp_path / "m.png")
    assert not (tmp_path / "m.png").exists()


def label_colours_in(path):
    """For each of tab10's colours: how many pixels of the PNG at `path` have
    it exactly, and whether some 3x3 block is solidly of it.

    A solid block is a marker's (the legend's, at least): antialiased black
    text makes isolated pixels of tab10's grey, never a block of them.
    """
    pixels = np.round(matplotlib.image.imread(path)[..., :3] * 255).astype(int)
    tab10 = np.round(np.array(matplotlib.colormaps["tab10"].colors) * 255).astype(int)
    counts, solid = [], []
    for colour in tab10:
        match = (pixels == colour).all(axis=-1)
        rows, cols = match.shape
        block = np.ones((rows - 2, cols - 2), bool)
        for i in range(3):
            for j in range(3):
                block &= match[i:i + rows - 2, j:j + cols - 2]
        counts.append(int(match.sum()))
        solid.append(bool(block.any()))
    return counts, solid


def test_latent_of_a_5d_model_is_its_principal_components_one_colour_per_label(
    model5, mnist, tmp_path
):
    images, labels = mnist
    points, colours = plots.latent(model5, images, labels, tmp_path / "l.png")

    assert matplotlib.image.imread(tmp_path / "l.png").shape == (600, 600, 4)
    tab10 = matplotlib.colormaps["tab10"].colors
    assert colours == {label: tab10[label] for label in range(10)}
    counts, solid = label_colours_in(tmp_path / "l.png")
    assert solid == [True] * 10
    # The legend's marker is some 60 pixels; the 20 points of each label add more.
    assert all(count > 120 for count in counts)

    z_mu = numpy(model5.encode(images)[0])
    centred = z_mu - z_mu.mean(axis=0)
    assert points.shape == (200, 2)
    # The principal components in float32, of n = 200 means in d = 5
    # dimensions: the sums of n terms (the mean subtracted, the variances)
    # and a backward-stable SVD each err by ~(n + d) U of the values'
    # spread, and the projections by d U: 4 (n + d) U (measured: < 1 U).
    rounding = 4 * (len(points) + 5) * U
    # Centred: the mean, of values up to max |z_mu|, subtracted in each of d
    # coordinates.
    np.testing.assert_allclose(points.mean(axis=0), 0,
                               atol=rounding * np.sqrt(5) * np.abs(z_mu).max())
    variance = points.var(axis=0)
    assert variance[0] >= variance[1] > 0
    np.testing.assert_allclose(np.cov(points.T)[0, 1], 0, atol=rounding * variance[0])
    # The first component holds the most variance of any direction.
    directions = np.random.default_rng(0).standard_normal((100, 5))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    assert (centred @ directions.T).var(axis=0).max() <= variance[0] * (1 + rounding)
    # And the two components are projections: lengths do not grow.
    assert (np.linalg.norm(points, axis=1)
            <= np.linalg.norm(centred, axis=1) * (1 + rounding)).all()


@pytest.mark.slow
def test_latent_draws_exactly_the_colours_of_the_labels_present(model5, mnist, tmp_path):
    images, labels = mnist
    some = np.isin(labels, [1, 3, 7])
    _, colours = plots.latent(model5, images[some], labels[some], tmp_path / "l.png")

    tab10 = matplotlib.colormaps["tab10"].colors
    assert colours == {1: tab10[0], 3: tab10[1], 7: tab10[2]}
    counts, solid = label_colours_in(tmp_path / "l.png")
    assert solid == [True] * 3 + [False] * 7
    assert all(count > 120 for count in counts[:3])
    assert [counts[i] for i in (3, 4, 5, 6, 8, 9)] == [0] * 6  # 7, grey, is also text's


def test_latent_of_a_2d_model_is_its_means(model, mnist, tmp_path):
    images, labels = mnist
    points, _ = plots.latent(model, images, labels, tmp_path / "l.png")
    assert_within_rounding(points, numpy(model.encode(images)[0]), encode64(model, images))


def test_latent_of_a_1d_model_is_its_mean_against_the_label(mnist, tmp_path):
    images, labels = mnist
    model = vae(z_dim=1)
    points, _ = plots.latent(model, images, labels, tmp_path / "l.png")
    np.testing.assert_array_equal(points[:, 0], labels)
    assert_within_rounding(points[:, 1], numpy(model.encode(images)[0])[:, 0],
                           encode64(model, images)[:, 0])


METRICS_CSV = """step,loss,recon_loss,kl_loss,test_neg_elbo
0,543.5,540.25,3.25,
100,210.0,195.5,14.5,205.75
200,160.0,140.0,20.0,
300,130.5,108.0,22.5,
400,120.0,96.5,23.5,118.25
"""


def lines_by_label(fig):
    return {line.get_label(): line for ax in fig.axes for line in ax.get_lines()}


def test_curves_plot_the_csv_columns_against_the_step(tmp_path):
    (tmp_path / "metrics.csv").write_text(METRICS_CSV)
    fig = plots.curves(tmp_path, tmp_path / "plots" / "curves.png")

    metrics = plots.read_metrics(tmp_path)
    steps = [0, 100, 200, 300, 400]
    np.testing.assert_array_equal(metrics["step"], steps)
    np.testing.assert_array_equal(metrics["kl_loss"], [3.25, 14.5, 20.0, 22.5, 23.5])
    assert np.isnan(metrics["test_neg_elbo"][[0, 2, 3]]).all()

    lines = lines_by_label(fig)
    assert set(lines) == {"loss", "recon_loss", "kl_loss", "test_neg_elbo"}
    for column in ("loss", "recon_loss", "kl_loss"):
        np.testing.assert_array_equal(lines[column].get_xdata(), steps)
        np.testing.assert_array_equal(lines[column].get_ydata(), metrics[column])
    np.testing.assert_array_equal(lines["test_neg_elbo"].get_xdata(), [100, 400])
    np.testing.assert_array_equal(lines["test_neg_elbo"].get_ydata(), [205.75, 118.25])
    for ax in fig.axes:
        assert ax.get_xlabel() == "optimizer step" and ax.get_ylabel() == "nats"
        assert ax.get_legend() is not None

    png = matplotlib.image.imread(tmp_path / "plots" / "curves.png")
    assert png.shape == (450, 1000, 4)
    assert np.ptp(png[..., :3]) > 0.5


def test_curves_without_any_test_elbo_draw_the_training_terms(tmp_path):
    (tmp_path / "metrics.csv").write_text(
        "step,loss,recon_loss,kl_loss,test_neg_elbo\n1,3.0,2.0,1.0,\n2,2.5,1.75,0.75,\n"
    )
    fig = plots.curves(tmp_path, tmp_path / "curves.png")
    assert set(lines_by_label(fig)) == {"loss", "recon_loss", "kl_loss"}
    assert (tmp_path / "curves.png").is_file()


@pytest.mark.parametrize("csv", [None, "", "step,loss,recon_loss,kl_loss,test_neg_elbo\n"])
def test_curves_need_the_metrics_that_train_writes(tmp_path, csv):
    if csv is not None:
        (tmp_path / "metrics.csv").write_text(csv)
    with pytest.raises(ValueError, match=r"metrics\.csv.*train --log-dir"):
        plots.curves(tmp_path, tmp_path / "curves.png")
    assert not (tmp_path / "curves.png").exists()


@pytest.mark.slow
def test_the_cli_draws_each_kind_from_a_saved_model(tmp_path, model, synthetic_mnist_dir):
    from keras_vae.saving.keras_file import save_model
    from tests.conftest import run_keras_vae

    model.compile()
    save_model(model, tmp_path / "m.keras")
    common = ("--model", tmp_path / "m.keras", "--data-dir", synthetic_mnist_dir)
    run = run_keras_vae("plot", "reconstructions", *common, "--n", 4,
                        "--out", tmp_path / "r.png")
    assert run.returncode == 0, run.stderr[-2000:]
    images, _ = read_mnist(synthetic_mnist_dir, "test[:4]")  # the first test images
    grey = read_grey(tmp_path / "r.png")
    assert grey.shape == (2 * SIDE + 2, 4 * SIDE + 6)
    for i, image in enumerate(scale_pixels(images)):
        np.testing.assert_allclose(tile(grey, 0, i), image, atol=plots.PNG_TOLERANCE)
    run = run_keras_vae("plot", "manifold", *common, "--n", 3, "--out", tmp_path / "m.png")
    assert run.returncode == 0 and read_grey(tmp_path / "m.png").shape == (3 * SIDE + 4,) * 2
    run = run_keras_vae("plot", "interpolation", *common, "--pair", "0,99999",
                        "--out", tmp_path / "i.png")
    assert run.returncode == 2 and "--pair: there are 2000 test images" in run.stderr
    run = run_keras_vae("plot", "curves", "--out", tmp_path / "c.png")
    assert run.returncode == 2 and "plot curves needs --log-dir" in run.stderr
    assert not (tmp_path / "i.png").exists() and not (tmp_path / "c.png").exists()


def test_pictures_are_written_in_the_format_their_extension_names(model, mnist, tmp_path):
    (tmp_path / "metrics.csv").write_text(METRICS_CSV)
    plots.reconstructions(model, mnist[0][:3], tmp_path / "r.jpg")
    plots.curves(tmp_path, tmp_path / "c.JPEG")
    plots.reconstructions(model, mnist[0][:3], tmp_path / "r.png")
    assert (tmp_path / "r.jpg").read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG's mark
    assert (tmp_path / "c.JPEG").read_bytes()[:3] == b"\xff\xd8\xff"
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=r"cannot write an image as \.bmp"):
        plots.reconstructions(model, mnist[0][:3], tmp_path / "r.bmp")
    assert not (tmp_path / "r.bmp").exists()
