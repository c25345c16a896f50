"""Voices as vectors: the math of synth/algebra.py on planted data, the `voicemap voices direction|edit|mix|
search --direction` commands on a temporary registry, bad input (one line, nothing stored), and reading sex
by projection on real speech with the real CAM++ encoder (leave one speaker out)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synth.algebra import (AlgebraError, AttributeDirection, classify, correlations, edit, fit_direction,
                           interpolate, label_residuals, ledoit_wolf, pair_direction, project, read, read_direction)
from cli_run import cli, dump


def planted(rng, n=1000, dim=32, dims=(3, 11, 20), shift=0.2):
    """Embedding-like vectors whose label only moves the `dims` coordinates: (n, dim) x, (n,) 0/1 y, (dim,) truth.

    Like a real encoder's: a large common component (coordinate 0), small spread (0.1 per coordinate) and a
    small attribute move, so that normalizing onto the sphere bends the planted move only a little.
    """
    truth = np.zeros(dim)
    truth[list(dims)] = shift
    y = (np.arange(n) % 2).astype(float)
    x = rng.standard_normal((n, dim)) * 0.1 + np.outer(y, truth)
    x[:, 0] += 1.0
    return x, y, truth


def cosine(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


# -- the math ---------------------------------------------------------------------------------------------


def test_mean_direction_recovers_a_planted_direction_and_reads_class_means_as_0_and_1():
    rng = np.random.default_rng(0)
    x, y, truth = planted(rng)
    fitted = fit_direction(x, y, method="mean")
    unit_x = x / np.linalg.norm(x, axis=1, keepdims=True)
    # on the sphere the move is not exactly `truth`; the class-mean difference of the unit vectors is
    expected = unit_x[y == 1].mean(0) - unit_x[y == 0].mean(0)
    np.testing.assert_allclose(fitted.vector, expected, atol=1e-12)
    assert cosine(fitted.vector, truth) > 0.9
    values = read(x, fitted)
    assert values[y == 1].mean() == pytest.approx(1.0) and values[y == 0].mean() == pytest.approx(0.0, abs=1e-9)
    assert fitted.labels == ("0.0", "1.0") and fitted.threshold == pytest.approx(0.5)
    assert (classify(x, fitted) == (y == 1)).mean() > 0.95


def test_numeric_label_gives_the_regression_slope_and_reads_in_label_units():
    rng = np.random.default_rng(1)
    dim = 16
    slope = np.zeros(dim)
    slope[5] = 0.05
    age = rng.uniform(20, 70, size=300)
    x = np.full((300, dim), 1.0) + np.outer(age - 45, slope) + rng.standard_normal((300, dim)) * 0.01
    fitted = fit_direction(x, [f"{a:.3f}" for a in age], method="mean")
    assert fitted.labels is None and fitted.threshold is None
    assert int(np.argmax(np.abs(fitted.vector))) == 5
    # the edit and the reading share units: alpha = 10 adds ten years to the reading (less a little, as the
    # reading puts the moved vector back on the sphere)
    edited = edit(x[0], fitted, 10.0, keep_norm=False)
    assert read(edited, fitted)[0] - read(x[0], fitted)[0] == pytest.approx(10.0, rel=0.02)
    assert np.corrcoef(read(x, fitted), age)[0, 1] > 0.95
    with pytest.raises(AlgebraError, match="no threshold"):
        classify(x, fitted)


def test_topk_selects_the_planted_dimensions_and_moves_only_those():
    rng = np.random.default_rng(2)
    x, y, truth = planted(rng, dims=(3, 11, 20))
    fitted = fit_direction(x, ["M" if v else "F" for v in y], method="topk", k=3)
    assert list(fitted.dims) == [3, 11, 20] and fitted.labels == ("F", "M")
    assert np.count_nonzero(fitted.vector) == 3
    r = correlations(x / np.linalg.norm(x, axis=1, keepdims=True), y)
    assert set(np.argsort(-np.abs(r))[:3]) == {3, 11, 20}
    source = x[0] / np.linalg.norm(x[0])
    moved = edit(source, fitted, 1.5, keep_norm=False)
    untouched = np.setdiff1d(np.arange(x.shape[1]), fitted.dims)
    np.testing.assert_allclose(moved[untouched], source[untouched], rtol=0, atol=1e-15)
    assert not np.allclose(moved[fitted.dims], source[fitted.dims])
    # k = dim is the mean method
    np.testing.assert_allclose(fit_direction(x, y, method="topk", k=32).vector, fit_direction(x, y).vector)


def test_edit_keeps_the_raw_norm_and_moves_the_reading_towards_the_other_class():
    rng = np.random.default_rng(3)
    x, y, _ = planted(rng)
    fitted = fit_direction(x, y)
    unit_x = x / np.linalg.norm(x, axis=1, keepdims=True)
    negative = unit_x[y == 0].mean(0) * 7.0  # a typical negative, at a raw norm far from 1
    for alpha in (0.5, 1.0, 2.0):
        moved = edit(negative, fitted, alpha)
        assert np.linalg.norm(moved) == pytest.approx(np.linalg.norm(negative))
        shift = read(moved, fitted)[0] - read(negative, fitted)[0]
        # putting the moved vector back on the sphere bends the move a little (either way), never reverses it
        assert 0.5 * alpha < shift < 1.1 * alpha
    assert not classify(negative, fitted)[0] and classify(edit(negative, fitted, 1.5), fitted)[0]
    np.testing.assert_allclose(edit(negative, fitted, 0.0), negative, rtol=1e-12)


def test_slerp_and_linear_endpoints_norms_and_constant_angle():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal(24) * 3, rng.standard_normal(24) * 5
    for method in ("slerp", "linear"):
        np.testing.assert_allclose(interpolate(a, b, 0.0, method=method), a, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(interpolate(a, b, 1.0, method=method), b, rtol=1e-12, atol=1e-12)
    ua, ub = a / np.linalg.norm(a), b / np.linalg.norm(b)
    omega = np.arccos(ua @ ub)
    for t in (0.1, 0.3, 0.5, 0.9):
        s = interpolate(a, b, t, method="slerp", keep_norm=False)
        assert np.linalg.norm(s) == pytest.approx(1.0)
        assert np.arccos(np.clip(s @ ua, -1, 1)) == pytest.approx(t * omega)  # equal angle per step of t
        kept = interpolate(a, b, t, method="slerp")
        assert np.linalg.norm(kept) == pytest.approx((1 - t) * np.linalg.norm(a) + t * np.linalg.norm(b))
        chord = interpolate(a, b, t, method="linear", keep_norm=False)
        np.testing.assert_allclose(chord, (1 - t) * ua + t * ub)
        assert np.linalg.norm(chord) < 1.0
    assert cosine(interpolate(a, a * 2, 0.5), a) == pytest.approx(1.0)  # parallel voices: no 0/0


def test_projection_reads_a_synthetic_label_with_a_threshold_fitted_on_training_only():
    rng = np.random.default_rng(5)
    dim = 48
    axis = rng.standard_normal(dim)
    axis /= np.linalg.norm(axis)

    def sample(n):
        y = rng.integers(0, 2, n)
        x = rng.standard_normal((n, dim)) * 0.15 + 0.5 * axis * (2 * y - 1)[:, None] + 1.0
        return x, y

    train_x, train_y = sample(60)
    test_x, test_y = sample(400)
    fitted = fit_direction(train_x, np.where(train_y, "yes", "no"))
    assert fitted.labels == ("no", "yes")
    assert (classify(test_x, fitted) == (test_y == 1)).mean() > 0.95
    p = project(test_x, fitted)
    assert p.shape == (400,) and np.all(np.abs(p) <= 1 + 1e-12)


def test_a_pair_prior_fixes_the_line_and_the_labels_only_its_sign_and_length():
    rng = np.random.default_rng(8)
    dim = 64
    sex = np.zeros(dim)
    sex[[4, 9]] = 0.2
    # 6 "speakers" whose identities are as large as the attribute: the class means alone are misled
    identities = rng.standard_normal((6, dim)) * 0.12
    y = np.array([0, 0, 0, 1, 1, 1])
    x = 1.0 * np.eye(dim)[0] + identities + np.outer(y, sex)
    # paired voices (each voice with the attribute added), with their own noise: no labels needed
    before = np.eye(dim)[0] + rng.standard_normal((40, dim)) * 0.12
    after = before + sex + rng.standard_normal((40, dim)) * 0.01
    prior = fit_direction(x, y, along=pair_direction(before, after))
    plain = fit_direction(x, y)
    assert cosine(prior.vector, sex) > 0.95 > cosine(plain.vector, sex)
    values = read(x, prior)
    assert values[y == 1].mean() - values[y == 0].mean() == pytest.approx(1.0)  # still in label units
    flipped = fit_direction(x, 1 - y, along=after.mean(0) - before.mean(0))
    assert cosine(flipped.vector, sex) < -0.95  # the labels set the sign
    with pytest.raises(AlgebraError, match="mean or fisher method only"):
        fit_direction(x, y, method="topk", k=3, along=sex)


def correlated_nuisance(rng, n, dim=24):
    """Binary data whose label moves coordinate 1 a little while a loud nuisance (an identity-like factor)
    moves coordinates 1 and 2 together: (n, dim) x, (n,) 0/1 y, (dim,) the Bayes-optimal discriminant.

    The class-mean difference points along coordinate 1, where the nuisance is loud; the best reading
    direction leans on coordinate 2 to cancel the nuisance (Σ⁻¹ Δ).
    """
    y = (np.arange(n) % 2).astype(float)
    nuisance = np.zeros(dim)
    nuisance[[1, 2]] = 0.3
    move = np.zeros(dim)
    move[1] = 0.08
    x = (rng.standard_normal((n, dim)) * 0.03 + np.outer(rng.standard_normal(n), nuisance) + np.outer(y, move))
    x[:, 0] += 1.0
    covariance = np.eye(dim) * 0.03**2 + np.outer(nuisance, nuisance)
    return x, y, np.linalg.solve(covariance, move)


def test_fisher_leans_away_from_a_correlated_nuisance_and_reads_held_out_items_better_than_mean():
    rng = np.random.default_rng(9)
    train_x, train_y, optimal = correlated_nuisance(rng, 200)
    test_x, test_y, _ = correlated_nuisance(rng, 2000)
    fisher, mean = fit_direction(train_x, train_y, method="fisher"), fit_direction(train_x, train_y)
    assert fisher.method == "fisher" and 0 < fisher.metadata["shrinkage"] < 1
    # measured: cosine 0.90 (fisher) against 0.82 (mean); held-out accuracy 81 % against 54 %
    assert cosine(fisher.vector, optimal) > 0.85 and cosine(fisher.vector, optimal) > cosine(mean.vector, optimal) + 0.05
    fisher_accuracy = (classify(test_x, fisher) == (test_y == 1)).mean()
    mean_accuracy = (classify(test_x, mean) == (test_y == 1)).mean()
    assert fisher_accuracy > 0.75 and fisher_accuracy > mean_accuracy + 0.2
    # the labels fix the length: the class means still read 0 and 1
    values = read(train_x, fisher)
    assert values[train_y == 1].mean() - values[train_y == 0].mean() == pytest.approx(1.0)
    # a prior line is whitened the same way: the nuisance-laden move along coordinate 1 becomes Σ⁻¹ Δ again
    along = fit_direction(train_x, train_y, method="fisher", along=np.eye(24)[1])
    assert cosine(along.vector, optimal) > 0.85
    again = AttributeDirection.from_stored(fisher.vector, json.loads(json.dumps(fisher.to_metadata())))
    assert again.method == "fisher" and again.metadata["shrinkage"] == fisher.metadata["shrinkage"]
    np.testing.assert_allclose(read(test_x, again), read(test_x, fisher))


def test_ledoit_wolf_matches_scikit_learn_and_label_residuals_remove_the_class_means():
    from sklearn.covariance import ledoit_wolf as reference

    rng = np.random.default_rng(10)
    x, y, _ = correlated_nuisance(rng, 90, dim=48)
    residuals = label_residuals(x, y)
    for value in (0.0, 1.0):
        np.testing.assert_allclose(residuals[y == value], x[y == value] - x[y == value].mean(0), atol=1e-12)
    covariance, shrinkage = ledoit_wolf(residuals)
    expected, expected_shrinkage = reference(residuals, assume_centered=True)
    assert shrinkage == pytest.approx(expected_shrinkage) and 0 < shrinkage < 1
    np.testing.assert_allclose(covariance, expected, atol=1e-12)


def test_spread_is_the_pooled_deviation_around_the_class_means_and_read_direction_counts_in_it():
    rng = np.random.default_rng(12)
    x, y, _ = planted(rng, n=400)
    fitted = fit_direction(x, np.where(y == 1, "M", "F"))
    values = read(x, fitted)
    residuals = np.concatenate([values[y == 1] - values[y == 1].mean(), values[y == 0] - values[y == 0].mean()])
    assert fitted.spread == pytest.approx(np.sqrt((residuals**2).sum() / (len(x) - 2)))
    readings = read_direction(fitted, x[:20])
    for reading, vector, value in zip(readings, x[:20], values[:20]):
        assert reading.value == pytest.approx(value) and reading.projection == pytest.approx(project(vector, fitted)[0])
        assert reading.margin == pytest.approx(value - fitted.threshold)
        assert reading.spreads == pytest.approx((value - fitted.threshold) / fitted.spread)
        assert reading.label == ("M" if value > fitted.threshold else "F")
    # planted classes one class-mean distance apart: the class means sit half a distance from the threshold,
    # several spreads away when the classes barely overlap (96 % read right above)
    assert abs(np.mean([r.spreads for r in readings])) < 10 and 0.5 / fitted.spread > 1
    # kept in the stored form; a direction stored before spreads were kept reads without them
    stored = json.loads(json.dumps(fitted.to_metadata()))
    assert AttributeDirection.from_stored(fitted.vector, stored).spread == pytest.approx(fitted.spread)
    del stored["spread"]
    old = AttributeDirection.from_stored(fitted.vector, stored)
    assert old.spread is None and read_direction(old, x[0])[0].spreads is None
    assert read_direction(old, x[0])[0].label == readings[0].label
    with pytest.raises(AlgebraError, match="spread -1"):
        AttributeDirection.from_stored(fitted.vector, {**stored, "spread": -1})


def test_numeric_spread_is_the_residual_deviation_from_the_label():
    rng = np.random.default_rng(13)
    age = np.round(rng.uniform(20, 70, size=200), 3)  # as the labels give it
    x = np.full((200, 8), 1.0) + np.outer(age - 45, np.eye(8)[3] * 0.05) + rng.standard_normal((200, 8)) * 0.01
    fitted = fit_direction(x, [f"{a:.3f}" for a in age])
    values = read(x, fitted)
    assert fitted.spread == pytest.approx(np.sqrt(((values - age) ** 2).sum() / 199))
    reading = read_direction(fitted, x[0])[0]
    assert reading.label is None and reading.margin is None
    assert reading.spreads == pytest.approx((values[0] - age.mean()) / fitted.spread)


def test_stored_form_round_trips():
    rng = np.random.default_rng(6)
    x, y, _ = planted(rng)
    fitted = fit_direction(x, y, method="topk", k=5)
    again = AttributeDirection.from_stored(fitted.vector.astype(np.float32), json.loads(json.dumps(fitted.to_metadata())))
    np.testing.assert_allclose(read(x, again), read(x, fitted), atol=1e-5)
    assert again.threshold == fitted.threshold and list(again.dims) == list(fitted.dims)


@pytest.mark.parametrize("call, message", [
    (lambda d, x: edit(x[0], d, float("nan")), "alpha nan"),
    (lambda d, x: edit(x[0], d, 1e308), "NaN or infinite|overflows"),
    (lambda d, x: edit(x[0][:10], d, 1.0), "dimension 10 but the direction has 32"),
    (lambda d, x: edit(np.full(32, np.nan), d, 1.0), "NaN"),
    (lambda d, x: edit(np.zeros(32), d, 1.0), "all-zero"),
    (lambda d, x: interpolate(x[0], -x[0], 0.5), "opposite"),
    (lambda d, x: interpolate(x[0], x[0][:10], 0.5), "differ"),
    (lambda d, x: fit_direction(x, ["a"] * len(x)), "two different values"),
    (lambda d, x: fit_direction(x, [str(i % 3) + "x" for i in range(len(x))]), "not all numbers"),
    (lambda d, x: fit_direction(x, [i % 2 for i in range(len(x))], method="topk", k=0), "1 <= k <= 32"),
    (lambda d, x: fit_direction(x[:5], [0, 1]), "2 labels for 5 vectors"),
])
def test_bad_input_is_a_one_line_error(call, message):
    x, y, _ = planted(np.random.default_rng(7))
    with pytest.raises(AlgebraError, match=message) as caught:
        call(fit_direction(x, y), x)
    assert "\n" not in str(caught.value)


# -- the commands, on a temporary registry ------------------------------------------------------------------

ENC = "campplus-common-advanced"  # what `--embedding campplus` names; its weights are not loaded by these commands


@pytest.fixture
def voices(tmp_path):
    """A registry of 10 voices (f0-f4, m0-m4) whose 192-d vectors differ by sex along a planted axis."""
    from cluster.registry import Registry

    rng = np.random.default_rng(11)
    axis = np.zeros(192)
    axis[[7, 50, 99, 150]] = 0.15
    common = rng.standard_normal(192) * 0.3
    path = tmp_path / "voices.sqlite"
    with Registry(path) as registry:
        for sex, sign in (("f", -1), ("m", 1)):
            for i in range(5):
                identity = rng.standard_normal(192) * 0.05
                vectors = (common + identity + sign * axis + rng.standard_normal((2, 192)) * 0.02) * (5 + i)
                registry.enroll(f"{sex}{i}", ENC, vectors)
    labels = tmp_path / "labels.tsv"
    labels.write_text("voice\tlabel\n" + "".join(f"{s}{i}\t{s.upper()}\n" for s in "fm" for i in range(5)))
    return path, labels


def test_direction_search_edit_mix_commands(voices, capsys):
    from cluster.registry import Registry

    path, labels = voices
    registry = ["--registry", str(path)]
    code, out, err = cli(capsys, "voices", "direction", "gender", "--labels", str(labels), *registry)
    assert code == 0, err
    assert "+ = M, - = F; training accuracy 100%" in out
    code, out, err = cli(capsys, "voices", "direction", "gender5", "--labels", str(labels), "--method", "topk",
                         "--k", "5", *registry)
    assert code == 0, err
    with Registry(path) as opened:
        stored = opened.get_direction("gender5", ENC)
        assert stored.metadata["k"] == 5 and {7, 50, 99, 150} <= set(stored.metadata["dims"])
        assert np.count_nonzero(stored.vector) == 5

    code, out, err = cli(capsys, "voices", "search", "--direction", "gender", "--top", "3", "--json", *registry)
    assert code == 0, err
    top = json.loads(out)
    assert len(top) == 3 and all(row["name"].startswith("m") and row["class"] == "M" for row in top)
    assert [row["reading"] for row in top] == sorted((row["reading"] for row in top), reverse=True)
    code, out, _ = cli(capsys, "voices", "search", "--direction", "gender", "--lowest", "-k", "5", "--json", *registry)
    assert {row["name"] for row in json.loads(out)} == {f"f{i}" for i in range(5)}

    code, out, err = cli(capsys, "voices", "edit", "f0", "--direction", "gender", "--alpha", "1.5", "--as", "f0_m",
                         *registry)
    assert code == 0, err
    code, out, err = cli(capsys, "voices", "mix", "f1", "m1", "--t", "0.3", "--as", "f1_m1", *registry)
    assert code == 0, err
    with Registry(path) as opened:
        from synth.algebra import AttributeDirection

        fitted = AttributeDirection.from_stored(opened.get_direction("gender", ENC).vector,
                                                opened.get_direction("gender", ENC).metadata)
        edited = opened.embeddings("f0_m", ENC)[0].vector
        assert opened.get("f0_m").metadata["tags"] == ["synthetic"]
        assert not classify(opened.centroid("f0", ENC), fitted)[0] and classify(edited, fitted)[0]
        # the derived voice keeps the raw norm of the voice it came from (5 x the unit-ish vectors of f0)
        f0_norm = np.mean([np.linalg.norm(e.vector) for e in opened.embeddings("f0", ENC)])
        assert np.linalg.norm(edited) == pytest.approx(f0_norm, rel=1e-5)
        mixed = opened.centroid("f1_m1", ENC)
        a, b = opened.centroid("f1", ENC), opened.centroid("m1", ENC)
        omega = np.arccos(float(a @ b))
        assert np.arccos(float(mixed @ a)) == pytest.approx(0.3 * omega, abs=1e-4)
        assert np.arccos(float(mixed @ b)) == pytest.approx(0.7 * omega, abs=1e-4)
    code, out, err = cli(capsys, "voices", "direction", "genderf", "--labels", str(labels), "--method", "fisher",
                         *registry)
    assert code == 0, err
    assert "+ = M, - = F; training accuracy 100%" in out
    code, out, _ = cli(capsys, "voices", "directions", *registry)
    assert code == 0 and "gender  campplus-common-advanced  mean" in out and "gender5" in out
    assert "genderf  campplus-common-advanced  fisher k=192" in out


@pytest.mark.parametrize("argv, message", [
    (["edit", "nobody", "--direction", "gender", "--alpha", "1", "--as", "x"], "voice 'nobody': not enrolled"),
    (["edit", "f0", "--direction", "age", "--alpha", "1", "--as", "x"], "direction 'age' (campplus-common-advanced)"),
    (["edit", "f0", "--direction", "gender", "--alpha", "nan", "--as", "x"], "alpha nan: must be a finite number"),
    (["edit", "f0", "--direction", "gender", "--alpha", "1e308", "--as", "x"], "NaN or infinite|overflows"),
    (["edit", "f0", "--direction", "gender", "--alpha", "1", "--as", "m1"], "--as m1: a voice of that name"),
    (["edit", "f0", "--direction", "gender", "--alpha", "1", "--as", "has\ttab"], "must not contain control characters"),
    (["edit", "other", "--direction", "gender", "--alpha", "1", "--as", "x"], "has no campplus-common-advanced"),
    (["mix", "f0", "other", "--t", "0.5", "--as", "x"], "voice 'other': has no campplus-common-advanced"),
    (["mix", "f0", "m0", "--t", "1.5", "--as", "x"], "--t 1.5: must be between 0"),
    (["mix", "f0", "ghost", "--t", "0.5", "--as", "x"], "voice 'ghost': not enrolled"),
    (["search", "--direction", "age"], "direction 'age'"),
    (["search"], "give an AUDIO clip"),
    (["direction", "g2", "--labels", "LABELS_ONE_CLASS"], "need at least two different values"),
    (["direction", "g2", "--labels", "LABELS_UNKNOWN_VOICE"], "voice 'zed': not enrolled"),
    (["direction", "g2", "--labels", "LABELS_NO_HEADER"], "the header must name"),
    (["direction", "g2", "--labels", "LABELS_MISSING_FILE"], "no-such.flac: no such file"),
    (["direction", "g2", "--labels", "LABELS_OK", "--method", "topk"], "the topk method needs 1 <= k <= 192"),
    (["direction", "g2", "--labels", "LABELS_OK", "--k", "5"], "--k 5: only with --method topk"),
    (["direction", "g2", "--labels", "LABELS_OK", "--method", "fisher", "--k", "5"], "--k 5: only with --method topk"),
])
def test_bad_input_is_one_line_and_stores_nothing(voices, capsys, argv, message):
    from cluster.registry import Registry

    path, labels = voices
    folder = path.parent
    assert cli(capsys, "voices", "direction", "gender", "--labels", str(labels), "--registry", str(path))[0] == 0
    with Registry(path) as opened:  # a voice of another encoder, to be used with the wrong one
        opened.enroll("other", "another-encoder", np.ones(16))
    files = {
        "LABELS_ONE_CLASS": "voice\tlabel\nf0\tF\nf1\tF\n",
        "LABELS_UNKNOWN_VOICE": "voice\tlabel\nf0\tF\nzed\tM\n",
        "LABELS_NO_HEADER": "f0\tF\nm0\tM\n",
        "LABELS_MISSING_FILE": "path\tlabel\nno-such.flac\tF\n",
        "LABELS_OK": labels.read_text(),
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    argv = [str(folder / a) if a in files else a for a in argv]
    before = dump(path)
    code, out, err = cli(capsys, "voices", *argv, "--registry", str(path))
    # a refused option value (a usage error, found before any work) exits 2; everything else 1
    usage = ("must be a finite number", "must not contain control", "--t 1.5", "give an AUDIO", "only with --method")
    assert code == (2 if any(part in message for part in usage) else 1) and out == "", (code, err)
    assert err.count("\n") == 1 and err.startswith(f"voicemap voices {argv[0]}: ")
    assert any(part in err for part in message.split("|")), err  # "a|b": either wording
    assert dump(path) == before


# -- real speech, real CAM++ ----------------------------------------------------------------------------------

CROP_S = 4.0  # each utterance cut to its first 4 s keeps the test fast; bench_directions.py compares whole ones


@pytest.fixture(scope="module")
def librispeech_campplus(shared_data):
    """(100, 192) CAM++ embeddings of the first 4 s of each utterance, speaker ids, sexes (SPEAKERS.TXT)."""
    import torch

    from diarize.audio import load_audio
    from diarize.embedding import load_encoder

    folder = shared_data / "speakers" / "librispeech-test-other"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machine's cores are shared
    try:
        encoder = load_encoder("campplus")
        # SPEAKERS.TXT: `ID | SEX | SUBSET | MINUTES | NAME`, comments start with ;
        sexes = {fields[0].strip(): fields[1].strip() for fields in (
            line.split("|") for line in (folder / "SPEAKERS.TXT").read_text().splitlines()
            if "|" in line and not line.startswith(";"))}
        paths = sorted(folder.glob("*/*.flac"))
        vectors = np.stack([encoder.embed(load_audio(p).samples[: int(CROP_S * 16000)]) for p in paths])
    finally:
        torch.set_num_threads(threads)
    return vectors, [p.parent.name for p in paths], [sexes[p.parent.name] for p in paths], folder


@pytest.mark.slow
def test_direction_fitted_on_nine_speakers_reads_them_and_edits_cross_the_threshold(librispeech_campplus):
    from synth.algebra import leave_one_group_out

    vectors, speakers, sexes, _ = librispeech_campplus
    speakers = np.array(speakers)
    for method, k in (("mean", None), ("topk", 20)):
        fitted = fit_direction(vectors, sexes, method=method, k=k)
        assert fitted.labels == ("F", "M")
        # the training speakers are read correctly from their mean voice...
        for speaker in sorted(set(speakers)):
            mean = vectors[speakers == speaker] / np.linalg.norm(vectors[speakers == speaker], axis=1, keepdims=True)
            truth = sexes[list(speakers).index(speaker)] == "M"
            assert classify(mean.mean(0), fitted)[0] == truth
            # ...and an edit of 1.5 class-mean distances towards the other sex crosses the threshold
            assert classify(edit(mean.mean(0), fitted, -1.5 if truth else 1.5), fitted)[0] != truth
    result = leave_one_group_out(vectors, sexes, speakers, method="mean")
    assert len(result.groups) == 10 and 0.0 <= result.item_accuracy <= 1.0


@pytest.mark.slow
def test_direction_command_embeds_labelled_files(librispeech_campplus, tmp_path, capsys):
    from cluster.registry import Registry

    _, _, _, folder = librispeech_campplus
    picks = {"1998": "F", "3080": "F", "2033": "M", "2414": "M"}
    rows = [f"{speaker}/{path.name}\t{sex}" for speaker, sex in picks.items()
            for path in sorted((folder / speaker).glob("*.flac"))[:2]]
    labels = tmp_path / "sex.tsv"
    labels.write_text("path\tlabel\n" + "\n".join(rows) + "\n")
    # paths are relative to the TSV's folder: put the TSV beside the speakers' folders through a symlink
    for speaker in picks:
        (tmp_path / speaker).symlink_to(folder / speaker)
    registry = tmp_path / "voices.sqlite"
    code, out, err = cli(capsys, "voices", "direction", "sex", "--labels", str(labels), "--registry", str(registry))
    assert code == 0, err
    assert "8 paths; + = M, - = F; training accuracy 100%" in out
    with Registry(registry) as opened:
        stored = opened.get_direction("sex", ENC)
    assert stored.vector.shape == (192,) and stored.metadata["labels"] == ["F", "M"]


@pytest.mark.slow
def test_direction_command_along_the_speed_line(librispeech_campplus, tmp_path, capsys):
    from cluster.registry import Registry
    from diarize.embedding import load_encoder
    from pipelines.voice_embedding import file_speech
    from pipelines.commands.voice_algebra import LABEL_MIN_SPEECH_S
    from synth.algebra import pair_direction
    from synth.speed_prior import speed_pair

    _, _, _, folder = librispeech_campplus
    picks = {"3080": "F", "367": "F", "2033": "M", "2609": "M"}
    files = [(folder / speaker / path.name, sex) for speaker, sex in picks.items()
             for path in sorted((folder / speaker).glob("*.flac"))[:2]]
    labels = tmp_path / "sex.tsv"
    labels.write_text("path\tlabel\n" + "".join(f"{path}\t{sex}\n" for path, sex in files))
    registry = tmp_path / "voices.sqlite"
    code, out, err = cli(capsys, "voices", "direction", "sex", "--labels", str(labels), "--along", "speed",
                         "--registry", str(registry))
    assert code == 0, err
    assert "mean along the x1.15 speed line" in out and "+ = M, - = F" in out
    with Registry(registry) as opened:
        stored = opened.get_direction("sex", ENC)
    assert stored.metadata["along"] == "speed x1.15"
    # the stored line is the files' own speed line, worked out here from the same speech, not the class means
    encoder = load_encoder("campplus")
    pairs = [speed_pair(file_speech(str(path), encoder, min_speech=LABEL_MIN_SPEECH_S)[0], encoder.sample_rate,
                        encoder.embed) for path, _ in files]
    line = pair_direction(np.stack([up for _, up in pairs]), np.stack([down for down, _ in pairs]))
    cosine = stored.vector @ line / (np.linalg.norm(stored.vector) * np.linalg.norm(line))
    assert abs(cosine) > 0.999
    code, out, err = cli(capsys, "voices", "direction", "sex_mean", "--labels", str(labels),
                         "--registry", str(registry))
    assert code == 0, err
    with Registry(registry) as opened:
        plain = opened.get_direction("sex_mean", ENC).vector
    assert abs(plain @ line / (np.linalg.norm(plain) * np.linalg.norm(line))) < 0.9


def test_direction_command_along_needs_audio_and_a_whole_line(voices, capsys):
    from cluster.registry import Registry

    path, labels = voices
    code, out, err = cli(capsys, "voices", "direction", "gender", "--labels", str(labels), "--along", "speed",
                         "--registry", str(path))
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "needs the labelled audio" in err
    code, _, err = cli(capsys, "voices", "direction", "gender", "--labels", str(labels), "--along", "speed",
                       "--method", "topk", "--k", "5", "--registry", str(path))
    assert code == 2 and "only with --method mean or fisher" in err  # an option refused: usage
    with Registry(path) as opened:
        assert "gender" not in [row.name for row in opened.list_directions()]
