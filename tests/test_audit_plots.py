"""Lines a mutation audit of the plots found unguarded: what each bar, whisker and label of
bars.png shows, which runs and seeds the dev curves average and how their legend counts them,
how the heatmap chooses, orders and labels its axes, and that aggregate saves each figure under
its own name through a temporary file (each test names the mutation it kills)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from test_aggregate import ACC, curve, heatmap_texts, plot_row, write_job

from layerft import plot_rows, plots
from layerft.aggregate import aggregate
from layerft.errors import LayerftError
from layerft.plots import bars_figure, curves_figure, draw
from layerft.plots_common import PlotRow
from layerft.plots_heatmap import heatmap_axes, heatmap_figure
from layerft.sweep_job import read_job
from layerft.sweep_table import TableRow

PER_ROW = "selection metric (per row)"
plots_draw = plots.draw  # the real one, where a test wraps plots.draw to keep its figures


def bars(ax: Axes) -> dict[str, dict[str, Any]]:
    """Each y tick label of a bars figure -> its bar's width, whisker and text."""
    ticks = {
        round(y): t.get_text() for y, t in zip(ax.get_yticks(), ax.get_yticklabels(), strict=True)
    }
    found: dict[str, dict[str, Any]] = {name: {} for name in ticks.values()}
    for patch in ax.patches:
        found[ticks[round(patch.get_y() + patch.get_height() / 2)]]["width"] = patch.get_width()
    (container,) = [c for c in ax.containers if getattr(c, "errorbar", None) is not None]
    for segment in container.errorbar.lines[2][0].get_segments():
        if len(segment):
            (x0, y), (x1, _) = segment
            found[ticks[round(y)]]["whisker"] = (x0, x1)
    for text in ax.texts:
        found[ticks[round(text.get_position()[1])]]["text"] = text.get_text()
    return found


# --- plot_rows ----------------------------------------------------------------------------------


def test_a_failed_seeds_history_is_no_dev_curve_of_its_row(tmp_path: Path) -> None:
    """Kills: the dev curves read of the failed jobs too: a run that published its history and
    then failed (writing metrics.json on a full disk) was averaged into the row's curve."""
    done = read_job(write_job(tmp_path / "1", 1, 0.7, history=curve(0.7)))
    failed = read_job(write_job(tmp_path / "2", 2, error="OSError: no space", history=curve(0.3)))
    assert failed.error and (failed.run_dir / "history.jsonl").exists()
    row = plot_rows.plot_row(TableRow({}, [done], [failed]), [], is_baseline=False)
    assert row.curves == [[(10, pytest.approx(0.5)), (20, 0.7)]]
    assert (row.scores, row.runs) == ([0.7], 2)
    assert row.higher_is_better
    loss = read_job(write_job(tmp_path / "3", 1, 0.2, metric="target/eval_loss", higher_is_better=False))  # fmt: skip
    assert not plot_rows.plot_row(TableRow({}, [loss], []), [], is_baseline=False).higher_is_better


def test_a_row_lacking_a_varied_setting_plots_it_as_a_dash(tmp_path: Path) -> None:
    """Kills: plot_row's settings read with `.get(k, "")`: the heatmap's tick (and dev-curve
    panel) of a row without the setting read "" where its label and the table read `-`."""
    done = read_job(write_job(tmp_path / "1", 1, 0.7))
    varied = ["tuning_mode", "target_task.lr"]
    row = plot_rows.plot_row(TableRow({"tuning_mode": "full"}, [done], []), varied, True)
    assert row.settings == {"tuning_mode": "full", "target_task.lr": "-"}
    assert row.label == "tuning_mode=full,target_task.lr=-" and row.is_baseline


def test_the_baseline_rows_bar_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills: plot_row handed is_baseline=False whatever the table says: no bar read
    "(baseline)" (nor was coloured apart)."""
    for inj, score in (("none", 0.6), ("demo_pos", 0.7)):
        write_job(tmp_path / inj, 1, score, injection_task=inj)
    drawn: dict[str, Figure] = {}
    monkeypatch.setattr(plots, "draw", lambda *args: drawn.update(plots_draw(*args)) or drawn)
    aggregate(tmp_path)
    ax = drawn["bars.png"].axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "injection_task=demo_pos", "injection_task=none (baseline)"
    ]  # fmt: skip
    assert [p.get_facecolor() for p in ax.patches] == [to_rgba("tab:blue"), to_rgba("tab:orange")]


# --- bars.png -----------------------------------------------------------------------------------


def test_each_bar_shows_its_own_rows_mean_sample_std_and_finished_seeds() -> None:
    """Kills: a row's mean as its seeds' median; the means (or the whiskers) drawn in reverse row order; the text's n as the seeds
    run (`row.runs`: failed ones too) and a row of failed seeds texted as a score; the
    "(baseline)" mark dropped; the first row drawn at the bottom; the x label naming the
    first row's metric where the rows' differ."""
    rows = [
        replace(plot_row([1.0, 0.7, 0.7], tuning_mode="full"), is_baseline=True),
        replace(plot_row([0.4, 0.6], tuning_mode="lora"), jobs=3),  # seed 3 failed
        replace(plot_row([], tuning_mode="bitfit"), jobs=2),  # every seed failed
    ]
    ax = bars_figure(rows, PER_ROW).axes[0]
    drawn = bars(ax)
    assert list(drawn) == ["tuning_mode=full (baseline)", "tuning_mode=lora", "tuning_mode=bitfit"]
    full, lora, bitfit = drawn.values()
    assert full["width"] == pytest.approx(0.8) and lora["width"] == pytest.approx(0.5)
    assert full["whisker"] == pytest.approx((0.8 - 0.03**0.5, 0.8 + 0.03**0.5))  # ddof=1
    assert lora["whisker"] == pytest.approx((0.5 - 0.02**0.5, 0.5 + 0.02**0.5))
    assert "whisker" not in bitfit
    assert [full["text"], lora["text"], bitfit["text"]] == [
        " 0.8000 (n=3)", " 0.5000 (n=2, 1 failed)", " no finished run"
    ]  # fmt: skip
    # the first row at the top
    ys = {t.get_text(): y for y, t in zip(ax.get_yticks(), ax.get_yticklabels(), strict=True)}
    assert ys["tuning_mode=full (baseline)"] > ys["tuning_mode=lora"] > ys["tuning_mode=bitfit"]
    assert ax.get_xlabel() == f"{PER_ROW} (mean ± sample std over seeds) (higher is better)"


def test_the_bars_and_the_heatmap_say_which_way_is_better_where_the_rows_agree() -> None:
    """A loss's heatmap coloured its worst cell brightest with nothing to say so, and a bar's
    `(n=2)` hid a third seed that failed."""
    both = [
        plot_row([score], metric="target/eval_loss", tuning_mode=mode, lr=lr)
        for mode, lr, score in (("full", "1", 0.3), ("full", "2", 0.4), ("lora", "1", 0.5), ("lora", "2", 0.6))
    ]  # fmt: skip
    loss = [replace(row, higher_is_better=False) for row in both]
    assert (
        bars_figure(loss, "target/eval_loss")
        .axes[0]
        .get_xlabel()
        .endswith("over seeds) (lower is better)")
    )
    figure = heatmap_figure(loss, ("tuning_mode", "lr"), ["tuning_mode", "lr"], "target/eval_loss")
    assert figure.axes[1].get_ylabel() == "target/eval_loss (lower is better)"
    mixed = [*loss[:2], *both[2:]]  # rows of two directions: none to name
    assert bars_figure(mixed, PER_ROW).axes[0].get_xlabel().endswith("over seeds)")
    # A row with no finished run (its jobs may have failed before the metric was known) says none
    failed = replace(both[0], scores=[], jobs=2)
    label = bars_figure([failed, *loss[1:]], PER_ROW).axes[0].get_xlabel()
    assert label.endswith("(lower is better)")


def test_a_bars_mean_has_results_mds_decimals() -> None:
    """bars.png wrote 0.562 where results.md wrote 0.5625 (3 decimals against 4); a run time
    in seconds, 1 decimal in both."""
    rows = [plot_row([0.5625], tuning_mode="full"), plot_row([123.45], tuning_mode="lora")]
    texts = [text.get_text() for text in bars_figure(rows, PER_ROW).axes[0].texts]
    assert texts == [" 0.5625 (n=1)", " 123.5 (n=1)"]


def test_a_single_seed_has_no_spread_and_its_bar_sets_the_axis() -> None:
    """Kills: `std` of one seed as np.std(ddof=1) (NaN): the row then counted as not finite and
    the axis ignored its bar (1.35 wide for a bar of 0.3)."""
    row = plot_row([0.3], tuning_mode="full")
    assert row.std == 0.0
    ax = bars_figure([row], ACC).axes[0]
    assert ax.get_xlim() == pytest.approx((0.0, 0.3 * 1.35))


def test_bars_of_negative_scores_keep_zero_and_the_whiskers_on_the_axis() -> None:
    """Kills: the axis's reach as the highest `mean + std` (no abs): every mean negative, the
    axis ended below 0, cutting off the bars (drawn from 0) and their texts."""
    rows = [plot_row([-0.5, -0.3], tuning_mode="full"), plot_row([-0.2, -0.2], tuning_mode="lora")]
    ax = bars_figure(rows, "target/eval_pearsonr").axes[0]
    low, high = ax.get_xlim()
    assert low <= -0.4 - 0.02**0.5 and high > 0


def test_bars_of_rows_that_all_failed_still_have_an_axis() -> None:
    """Kills: the axis's reach defaulting to 0 with no finished row (an empty 0..0 axis)."""
    rows = [replace(plot_row([], tuning_mode=m), jobs=1) for m in ("full", "lora")]
    ax = bars_figure(rows, ACC).axes[0]
    assert ax.get_xlim() == pytest.approx((0.0, 1.35))
    assert [t.get_text() for t in ax.texts] == [" no finished run"] * 2


# --- dev_curves.png -----------------------------------------------------------------------------


def lines(ax: Axes) -> dict[str, tuple[list[float], list[float]]]:
    """Each legend entry's line -> its (steps, values)."""
    return {
        line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
        for line in ax.get_lines()
        if not line.get_label().startswith("_")
    }


def test_a_dev_curve_is_the_mean_of_its_seeds_at_each_step_in_step_order() -> None:
    """Kills: the mean curve as the seeds' max at a step, or as the last seed's value; its steps
    in the order first seen (a seed evaluated at 20 only, before one at 10 and 20: a line drawn
    back from 20 to 10); a row with no curve (every seed failed) in the legend as `(n=0)`, or no dev_curves.png at all; a
    row's n as its scores where a seed left no history; each seed's faint line missing."""
    rows = [
        PlotRow("tuning_mode=full", {"tuning_mode": "full"}, [0.7, 0.9],
                [[(20, 0.7)], [(10, 0.3), (20, 0.9)]], ACC),
        replace(plot_row([], tuning_mode="bitfit"), curves=[], jobs=2),
        PlotRow("tuning_mode=lora", {"tuning_mode": "lora"}, [0.6, 0.8], [[(10, 0.6)]], ACC),
    ]  # fmt: skip
    figures = draw(rows, ["tuning_mode"], ACC, None)  # one row without a curve: still drawn
    ax = figures["dev_curves.png"].subfigs[0].axes[0]
    assert lines(ax) == {
        "tuning_mode=full (n=2)": ([10, 20], [pytest.approx(0.3), pytest.approx(0.8)]),
        "tuning_mode=lora (n=1)": ([10], [0.6]),
    }
    faint = [line for line in ax.get_lines() if line.get_alpha() == 0.25]
    assert sorted(list(line.get_xdata()) for line in faint) == [[10, 20], [20]]


def test_more_rows_than_colours_are_told_apart_by_line_style() -> None:
    """Kills: every dev curve drawn solid: rows 1 and 11 (tab10 repeats) looked the same."""
    rows = [plot_row([0.5], tuning_mode=f"m{i:02}") for i in range(11)]
    ax = curves_figure(rows, ACC).subfigs[0].axes[0]
    drawn = [(line.get_color(), line.get_linestyle()) for line in ax.get_lines()]
    assert len(drawn) == 11 and len(set(drawn)) == 11


def test_a_panel_of_rows_of_several_metrics_names_each_rows_metric() -> None:
    """Kills: a panel's legend losing draw()'s ` [metric]` where its rows' metrics differ (the
    panel's axis names none): accuracy and f1 curves on one axis, unnamed."""
    f1 = "target/eval_f1"
    rows = [
        plot_row([0.9], target_task="a", tuning_mode="full"),
        plot_row([0.6], f1, target_task="a", tuning_mode="lora"),
        plot_row([0.8], target_task="b", tuning_mode="full"),
    ]
    curves = draw(rows, ["target_task", "tuning_mode"], PER_ROW, None)["dev_curves.png"]
    first, second = curves.subfigs
    assert first.axes[0].get_ylabel() == f"dev {PER_ROW}"
    assert [t.get_text() for t in first.legends[0].get_texts()] == [
        "tuning_mode=full [accuracy] (n=1)", "tuning_mode=lora [f1] (n=1)"
    ]  # fmt: skip
    assert second.axes[0].get_ylabel() == f"dev {ACC}"
    assert [t.get_text() for t in second.legends[0].get_texts()] == ["tuning_mode=full (n=1)"]


# --- heatmap.png --------------------------------------------------------------------------------


def test_heatmap_refuses_one_setting_on_both_axes() -> None:
    """Kills: the requested pair's check for two different settings dropped."""
    rows = [plot_row([0.5], a=a, b=b) for a in ("1", "2") for b in ("1", "2")]
    with pytest.raises(LayerftError, match=r"heatmap needs two different varied settings"):
        heatmap_axes(rows, ["a", "b"], ("a", "a"))


def test_heatmap_orders_numeric_values_as_numbers_and_labels_its_axes() -> None:
    """Kills: axis values sorted as text (1e-4 before 1e-5 before 3e-5); the axes' labels
    swapped; the title's "averaged over" naming the axes' settings too."""
    rows = [
        plot_row([score + 0.1 * n], lr=lr, tuning_mode=mode, seed_set=s)
        for n, lr in enumerate(("1e-4", "3e-5", "1e-5"))
        for mode, score in (("full", 0.5), ("lora", 0.4))
        for s in ("x", "y")
    ]
    figure = heatmap_figure(rows, ("lr", "tuning_mode"), ["lr", "tuning_mode", "seed_set"], ACC)
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1e-5", "3e-5", "1e-4"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("lr", "tuning_mode")
    assert ax.get_title() == f"mean {ACC}\naveraged over seed_set"
    assert heatmap_texts(figure)["1e-5", "lora"] == "0.600"
    assert heatmap_texts(figure)["1e-4", "full"] == "0.500"


def test_a_failed_rows_metric_does_not_refuse_the_heatmap() -> None:
    """Kills: mixed_metric_cell counting the metric of a row without scores: a job refused
    before its config validated (metric "") beside an accuracy row read as a cell "averaging
    different selection metrics", and no heatmap was drawn."""
    rows = [
        plot_row([0.7], injection_task="demo_pos", tuning_mode="full", lr="1"),
        replace(plot_row([], "", injection_task="demo_pos", tuning_mode="full", lr="2"), jobs=1),
        plot_row([0.6], injection_task="none", tuning_mode="full", lr="1"),
        plot_row([0.5], injection_task="none", tuning_mode="full", lr="2"),
    ]
    varied = ["injection_task", "tuning_mode", "lr"]
    figures = draw(rows, varied, ACC, ("injection_task", "tuning_mode"))
    assert heatmap_texts(figures["heatmap.png"]) == {
        ("demo_pos", "full"): "0.700\n1/2 combos\n1/2 runs",
        ("none", "full"): "0.550",
    }


def test_a_nan_score_leaves_the_other_cells_of_its_metric_coloured() -> None:
    """Kills: shades() scaling over every cell of a metric, NaN means too: one NaN score (a
    record layerft did not write) made the metric's lowest and highest NaN, and every cell of
    it grey, the colour of a cell without a mean."""
    pearson = "target/eval_pearsonr"
    rows = [
        plot_row([0.9], tuning_mode="full", target_task="sent"),
        plot_row([0.8], tuning_mode="lora", target_task="sent"),
        plot_row([float("nan")], tuning_mode="bitfit", target_task="sent"),
        plot_row([0.3], pearson, tuning_mode="full", target_task="sts"),
        plot_row([0.1], pearson, tuning_mode="lora", target_task="sts"),
    ]
    axes = ("tuning_mode", "target_task")
    figure = heatmap_figure(rows, axes, list(axes), PER_ROW)
    shade = np.ma.filled(figure.axes[0].images[0].get_array(), np.nan)
    np.testing.assert_allclose(shade, [[np.nan, 1.0, 0.0], [np.nan, 1.0, 0.0]])


# --- files --------------------------------------------------------------------------------------


def test_each_figure_is_saved_under_its_own_name_through_a_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills: the savefig lambda binding `figure` late (every file the last figure drawn: bars.png
    and heatmap.png held the dev curves); and a figure saved to its final name, not the
    temporary file write_all_atomic renames (a kill mid-write left half a PNG)."""
    for mode in ("full", "lora"):
        for inj in ("none", "demo_pos"):
            write_job(tmp_path / mode / inj, 1, 0.7, history=curve(0.7), injection_task=inj, tuning_mode=mode)  # fmt: skip
    drawn: dict[str, Figure] = {}
    monkeypatch.setattr(plots, "draw", lambda *args: drawn.update(plots_draw(*args)) or drawn)
    saved: list[tuple[Figure, Path]] = []
    monkeypatch.setattr(Figure, "savefig", lambda self, path, **_: saved.append((self, Path(path))))
    aggregate(tmp_path)
    assert sorted(drawn) == ["bars.png", "dev_curves.png", "heatmap.png"]
    for name, figure in drawn.items():
        (path,) = [p for f, p in saved if f is figure]
        assert path.parent == tmp_path and path.name.startswith(f".{name}.")
        assert path.suffix == ".tmp" and (tmp_path / name).exists() and not path.exists()


def test_the_bars_axis_label_fits_beside_short_row_labels() -> None:
    """The figure's width came from its row labels alone: `injection_task=none (baseline)` left
    `target/eval_accuracy (mean ± sample std over seeds) (higher is better)` cut at `(higher is
    bette` on the right edge of bars.png."""
    rows = [
        replace(plot_row([0.56], injection_task="none"), is_baseline=True),
        plot_row([0.69], injection_task="demo_pos"),
    ]
    figure = bars_figure(rows, "target/eval_accuracy")
    figure.draw_without_rendering()
    label = figure.axes[0].xaxis.label.get_window_extent()
    assert figure.bbox.x0 <= label.x0 and label.x1 <= figure.bbox.x1
