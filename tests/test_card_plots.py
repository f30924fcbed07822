"""prefmill/card_plots.py: the PNG plots measured against the manifest's stats: one per non-empty
histogram, readable PNGs of a sane size, and bars (as drawn, and as pixels in the PNG) as high as
the counts."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from prefmill.card_plots import draw_plots, plot_paths, render_plots
from prefmill.hub import publish
from tests.publish_helpers import PREFERENCE_STATS, PROCESS_STATS, make_store

BAR = (0x4C, 0x72, 0xB0)
"""The bars' colour."""

TRUTH = {  # the histograms of PREFERENCE_STATS and PROCESS_STATS, written out by hand, in the order drawn
    "margin_histogram": {"[0.8, 0.9)": 1, "[0.9, inf)": 3},
    "rise_error_types": {"change_number": 2, "swap_terms": 1},  # kept edits, not all edits
    "pair_drops": {"swap_inconsistent": 2, "no_incorrect_sample": 1},
    "first_error_step": {"1": 2},
}
WIDE = {"stats": {"steps": {"first_error_step": {"10": 1, "2": 7, "0": 3, "5": 5}},
                  "pairs": {"separability": {"margin_histogram": {"[0.5, 1.0)": 4, "(-inf, 0.0)": 2, "[0.0, 0.5)": 6}}}}}
WIDE_TRUTH = {"first_error_step": {"0": 3, "2": 7, "5": 5, "10": 1}, "margin_histogram": {"(-inf, 0.0)": 2, "[0.0, 0.5)": 6,
                                                                                          "[0.5, 1.0)": 4}}


def _bar_heights_in_pixels(png: bytes) -> list[int]:
    """Heights, in pixels, of the bars in the PNG, left to right: the runs of columns in the bars' colour."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    mask = (np.abs(pixels - np.array(BAR)).sum(axis=2) <= 6)
    columns = mask.sum(axis=0)
    heights, run = [], []
    for x, count in enumerate(columns):
        if count:
            run.append(x)
        elif run:
            heights.append(int(columns[run[len(run) // 2]]))
            run = []
    return heights + ([int(columns[run[len(run) // 2]])] if run else [])


@pytest.mark.parametrize(("stats", "names"), [
    (PREFERENCE_STATS, ["margin_histogram", "rise_error_types", "pair_drops"]),
    (PROCESS_STATS, ["first_error_step"]),
    ({}, []),
])
def test_one_png_per_non_empty_histogram(tmp_path, stats, names):
    plots = render_plots({"stats": stats}, tmp_path / "plots")

    assert [p.name for p in plots] == names
    assert sorted(f.name for f in (tmp_path / "plots").iterdir()) == sorted(f"{n}.png" for n in names)
    assert [p.path for p in plots] == plot_paths({"stats": stats}) == [f"plots/{n}.png" for n in names]
    for plot in plots:
        assert (tmp_path / plot.path).read_bytes() == plot.png
        with Image.open(tmp_path / plot.path) as image:
            image.verify()
        with Image.open(tmp_path / plot.path) as image:
            assert image.format == "PNG" and image.size == (600, 300) and image.mode in ("RGB", "RGBA")


@pytest.mark.parametrize("stats", [PREFERENCE_STATS, PROCESS_STATS])
def test_the_drawn_bars_are_the_stats_counts(stats):
    for plot in draw_plots({"stats": stats}):
        assert dict(zip(plot.labels, plot.heights)) == TRUTH[plot.name], plot.name
        assert list(plot.labels) == list(TRUTH[plot.name]), plot.name  # the order, too


def test_bins_are_drawn_in_numeric_order():
    plots = {p.name: p for p in draw_plots(WIDE)}
    assert plots["first_error_step"].labels == ("0", "2", "5", "10")
    assert plots["first_error_step"].heights == (3, 7, 5, 1)
    assert plots["margin_histogram"].labels == ("(-inf, 0.0)", "[0.0, 0.5)", "[0.5, 1.0)")
    assert plots["margin_histogram"].heights == (2, 6, 4)


@pytest.mark.parametrize(("manifest", "truth"), [({"stats": PREFERENCE_STATS}, TRUTH), ({"stats": PROCESS_STATS}, TRUTH),
                                                 (WIDE, WIDE_TRUTH)])
def test_the_bars_in_the_png_are_as_high_as_the_counts(manifest, truth):
    """Measured on the image: bar heights in pixels, left to right, are proportional to the counts
    (bars start at 0)."""
    for plot in draw_plots(manifest):
        counts = list(truth[plot.name].values())
        pixels = _bar_heights_in_pixels(plot.png)
        assert len(pixels) == len(counts), plot.name
        scale = max(pixels) / max(counts)
        assert all(abs(p - c * scale) <= 2 for p, c in zip(pixels, counts)), (plot.name, pixels, counts)


def test_a_folder_publish_holds_the_plots_the_card_links(tmp_path):
    store = make_store(tmp_path / "store")
    out = tmp_path / "out"
    result = publish(store, "pref", None, repo=str(out))

    card = (out / "README.md").read_text()
    assert sorted(result.plots) == sorted(p.relative_to(out).as_posix() for p in (out / "plots").iterdir())
    for rel in result.plots:
        assert f"]({rel})" in card
        assert (out / rel).read_bytes() == next(p.png for p in draw_plots({"stats": PREFERENCE_STATS}) if p.path == rel)
