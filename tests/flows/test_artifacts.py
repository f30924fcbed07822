"""flows/artifacts.py: the card's histograms as a Prefect markdown artifact with the PNGs inline."""

from __future__ import annotations

import base64
import io
import re

import pytest
from PIL import Image
from prefect import flow
from prefect.artifacts import Artifact

from prefmill.card_plots import draw_plots
from prefmill.flows.artifacts import histogram_artifact
from tests.publish_helpers import PREFERENCE_STATS, PROCESS_STATS

pytestmark = pytest.mark.usefixtures("prefect_server")


@flow(name="artifacts-test")
def _run(dataset: str, version: dict) -> str | None:
    """Artifacts belong to a run (creating one outside a run is deprecated in Prefect 3)."""
    return histogram_artifact(dataset, version)


@pytest.mark.parametrize(("dataset", "stats"), [("Art_Pref", PREFERENCE_STATS), ("art-prm", PROCESS_STATS)])
def test_every_histogram_is_an_inline_png_of_the_artifact(dataset, stats):
    version = {"version": "v0001", "stats": stats}
    key = _run(dataset, version)

    artifact = Artifact.get(key)
    assert key == f"{dataset.lower().replace('_', '-')}-histograms"
    assert artifact is not None and artifact.type == "markdown" and artifact.flow_run_id is not None
    images = re.findall(r"!\[([^\]]*)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", artifact.data)
    expected = draw_plots(version)
    assert [title for title, _ in images] == [p.title for p in expected]
    for (_, encoded), plot in zip(images, expected):
        png = base64.b64decode(encoded)
        assert png == plot.png
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG" and image.size == (600, 300)
    assert "pairs: dropped candidates by reason: swap_inconsistent 2, no_incorrect_sample 1" in artifact.data or (
        dataset == "art-prm" and "steps: first wrong step (0-based): 1 2" in artifact.data)


def test_no_histogram_no_artifact():
    assert _run("art-empty", {"version": "v0001", "stats": {}}) is None
    assert Artifact.get("art-empty-histograms") is None
