"""The HTML page from DriftReport records: order, escaping, insufficient data, performance over time, self-contained."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from kestrel.drift_monitor.render import ordered_features, render


class Page(HTMLParser):
    """Text of every figure caption, every table row's first cell, and every tag with its attributes."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.captions: list[str] = []
        self.titles: list[str] = []
        self._in: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        while self._in and self._in.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        if self._in[-2:] == ["figcaption", "strong"]:
            self.captions.append(data)
        if self._in and self._in[-1] == "title":
            self.titles.append(data)


def test_the_drifted_feature_comes_first(make_report, make_feature) -> None:
    report = make_report(
        features=[make_feature("amount"), make_feature("merchant_risk"), make_feature("channel", drifted=True)]
    )

    page = Page(render([report]))

    assert [m["name"] for m in ordered_features(report)] == ["channel", "amount", "merchant_risk"]
    assert page.captions == ["score", "channel", "amount", "merchant_risk"]  # the score distribution leads


def test_drifted_features_keep_the_reports_largest_effect_first_order(make_report, make_feature) -> None:
    report = make_report(features=[make_feature("a", drifted=True), make_feature("b"), make_feature("c", drifted=True)])
    report["drifted_features"] = ["c", "a"]

    assert [m["name"] for m in ordered_features(report)] == ["c", "a", "b"]


def test_every_name_is_escaped(make_report, make_feature) -> None:
    hostile = '<img src=x onerror="alert(1)">&'
    report = make_report(features=[make_feature(hostile, drifted=True)], model_name="<script>alert(2)</script>")

    html = render([report])
    page = Page(html)

    assert "<img" not in html and "<script" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;" in html
    assert hostile in page.captions
    assert "Drift report: <script>alert(2)</script> version 7" in page.titles


def test_an_insufficient_data_window_says_so_plainly(make_report, make_feature) -> None:
    report = make_report(features=[make_feature("amount")], status="insufficient_data")

    html = render([report])
    text = re.sub(r"<[^>]+>", "", html)

    assert "Insufficient data. 50 rows in this window is below the minimum-sample rule" in text
    assert "1 insufficient data" in text
    body = html.split("<body>")[1]
    assert 'class="verdict-drifted"' not in body and "class='badge drift'" not in body


def test_a_range_of_windows_shows_performance_over_time(make_report, make_performance) -> None:
    windows = [make_report(i, performance=make_performance(pr)) for i, pr in enumerate([0.9, 0.86, None, 0.7])]

    html = render(list(reversed(windows)))  # any input order: the page is in time order
    page = Page(html)

    assert "Performance over time" in html
    measured = [t for t in page.titles if t.startswith("measured PR-AUC: ")]
    assert measured == ["measured PR-AUC: 0.9", "measured PR-AUC: 0.86", "measured PR-AUC: 0.7"]
    assert sum(t.startswith("reference band 0.82 – 0.94") for t in page.titles) == 4
    assert len([t for t in page.titles if t.startswith("estimated precision (CBPE): ")]) == 4
    assert [tag for tag, _ in page.tags].count("polyline") >= 3  # the window without labels breaks the line
    glance = html.split("<h2>Windows at a glance</h2>")[1].split("</table>")[0]
    assert glance.count("within band") == 3 and glance.count(">degraded<") == 1  # PR-AUC 0.7 is below 0.82
    starts = re.findall(r"<summary>(\d{4}-\d\d-\d\d \d\d:\d\d)", html)
    assert starts == sorted(starts, reverse=True) and len(starts) == 4  # newest window first


def test_feature_only_reports_say_there_is_no_performance(make_report) -> None:
    assert "No performance in these reports" in render([make_report(0), make_report(1)])


def test_the_page_needs_no_network(make_report, make_feature, make_performance) -> None:
    report = make_report(features=[make_feature("amount", drifted=True)], performance=make_performance(0.8))

    page = Page(render([report]))

    assert {tag for tag, _ in page.tags}.isdisjoint({"script", "link", "img", "iframe", "object"})
    assert not [attrs for _, attrs in page.tags if {"src", "href"} & set(attrs)]


def test_categorical_bins_are_labelled_by_value(make_report, make_feature) -> None:
    report = make_report(features=[make_feature("channel", kind="categorical", drifted=True, shift=0.2)])

    titles = Page(render([report])).titles

    assert "0: reference 70.0%" in titles and "1: current 50.0%" in titles


def test_a_window_from_an_incomplete_prediction_log_says_so(make_report) -> None:
    assert "prediction log incomplete" in render([make_report(0) | {"log_complete": False}])
    assert "prediction log incomplete" not in render([make_report(0)])


def test_an_events_reports_categorical_bins_are_labelled_by_their_names(make_report, make_feature) -> None:
    channel = {**make_feature("channel", drifted=True, kind="categorical", shift=0.2), "categories": ["<pos>", "other"]}
    html = render([{**make_report(features=[channel]), "subject": "events", "performance": None}])
    assert "&lt;pos&gt;" in html and "<pos>" not in html and ">other<" in html
