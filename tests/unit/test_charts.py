"""The SVG charts are pure functions: well-formed, labelled, accessible, and labels escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from vcisc.web import charts

SVG = "{http://www.w3.org/2000/svg}"
EVIL = "<script>alert(\"x\")</script> & 'co'"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and desc is not None
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    return root


def texts(root: ET.Element) -> list[str]:
    return ["".join(el.itertext()) for el in root.iter(f"{SVG}text")]


def test_bar_chart_is_well_formed_and_shows_every_label_and_value() -> None:
    svg = charts.bar_chart(
        chart_id="c1",
        title="Requests by sector",
        desc="energy 3, health 1",
        labels=["energy", "health"],
        series=[("requests", [3, 1])],
    )
    root = parse(svg)
    assert root.find(f"{SVG}title").text == "Requests by sector"  # type: ignore[union-attr]
    shown = texts(root)
    assert "energy" in shown and "health" in shown and "3" in shown and "1" in shown
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "chart__bar"]
    assert len(bars) == 2
    assert float(bars[0].get("width", "0")) > float(bars[1].get("width", "0")) > 0


def test_labels_titles_and_ids_are_escaped() -> None:
    svg = charts.bar_chart(
        chart_id='x"y',
        title=EVIL,
        desc=EVIL,
        labels=[EVIL],
        series=[(EVIL, [2])],
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    root = parse(svg)
    assert root.find(f"{SVG}title").text == EVIL  # type: ignore[union-attr]
    assert root.get("id") == 'x"y'
    for chart in (
        charts.box_chart(chart_id="b", title=EVIL, desc=EVIL, groups=[(EVIL, [1, 2, 3])]),
        charts.line_chart(
            chart_id="l", title=EVIL, desc=EVIL, x_labels=[EVIL, "b"], series=[(EVIL, [1, 2])]
        ),
    ):
        assert "<script>" not in chart
        assert EVIL in "".join(parse(chart).itertext())


def test_grouped_bars_have_a_legend() -> None:
    svg = charts.bar_chart(
        chart_id="n",
        title="Offers and engagements",
        desc="",
        labels=["DE", "FR"],
        series=[("Offers", [2, 0]), ("Engagements", [1, 1])],
    )
    shown = texts(parse(svg))
    assert "Offers" in shown and "Engagements" in shown and "DE" in shown


def test_empty_data_still_makes_an_accessible_svg() -> None:
    for svg in (
        charts.bar_chart(chart_id="e1", title="T", desc="D", labels=[], series=[]),
        charts.box_chart(chart_id="e2", title="T", desc="D", groups=[("triage", [])]),
        charts.line_chart(chart_id="e3", title="T", desc="D", x_labels=[], series=[]),
    ):
        assert "No data to show." in texts(parse(svg))


def test_box_chart_draws_the_quartiles() -> None:
    svg = charts.box_chart(
        chart_id="b",
        title="Times",
        desc="",
        groups=[("Triage", [1, 2, 3, 4, 5]), ("Acceptance", [])],
    )
    root = parse(svg)
    assert "median 3 h" in texts(root)
    assert "n=5" in texts(root) and "n=0" in texts(root)
    boxes = list(root.iter(f"{SVG}g"))
    assert len(boxes) == 1
    assert "first quartile 2" in "".join(boxes[0].itertext())


def test_summarise() -> None:
    assert charts.summarise([]) is None
    assert charts.summarise([4.0]) == charts.Summary(1, 4, 4, 4, 4, 4)
    s = charts.summarise([5, 1, 3, 2, 4])
    assert s is not None and (s.minimum, s.q1, s.median, s.q3, s.maximum) == (1, 2, 3, 4, 5)


def test_line_chart_breaks_at_missing_values() -> None:
    svg = charts.line_chart(
        chart_id="t",
        title="Trend",
        desc="",
        x_labels=["2026-W01", "2026-W02", "2026-W03", "2026-W04"],
        series=[("Triage", [1.0, None, 2.0, 3.0]), ("Offer", [None, None, None, 4.0])],
    )
    root = parse(svg)
    assert len(list(root.iter(f"{SVG}circle"))) == 4
    assert len(list(root.iter(f"{SVG}polyline"))) == 1  # W03–W04 only; single points stand alone
    assert "2026-W01" in texts(root)


@pytest.mark.parametrize(
    ("value", "text"),
    [(12.0, "12"), (2.345, "2.35"), (0.5, "0.5"), (-0.0, "0"), (1e9, "1000000000")],
)
def test_fmt(value: float, text: str) -> None:
    assert charts.fmt(value) == text
