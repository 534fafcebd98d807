"""report.html's Search section (composer.html_search): the behaviours chart, the sources
and kept timelines, a finding's lineage; escaping, and summaries without a search block.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from composer import html_search
from composer.html_search import chart, lineage, section

EVIL = "<script>alert(1)</script>"


def search(points: int = 50, kept: int = 5) -> dict:
    over_time = [[round(i * 7.3, 2), i, 3 * i // 2 + 4, min(kept, i // 10 + 1)]
                 for i in range(1, points + 1)]
    return {"generator": "guided", "behaviours": over_time[-1][2] if over_time else 0,
            "kept": kept, "over_time": over_time,
            "sources": [{"source": "fresh", "tries": 20, "finds": 2},
                        {"source": "fault after hit", "tries": 10, "finds": 3},
                        {"source": "lengthen", "tries": 0, "finds": 0}],
            "corpus": [{"timeline": 10 * n + 1, "origin": "fresh" if n == 0 else "move",
                        "parent": None if n == 0 else 10 * n - 9, "elapsed_seconds": 73.0 * n,
                        "why": f"{n + 1} new behaviours", "new_count": 30,
                        "new": [f"assert pass k{i}" for i in range(20)], "improved": []}
                       for n in range(kept)]}


def svg_of(page: str) -> ET.Element:
    match = re.search(r"<svg.*?</svg>", page, re.S)
    assert match, page
    return ET.fromstring(match.group(0))  # well-formed XML, as inline SVG must be


def test_the_chart_draws_one_point_per_sample_on_two_lines_with_labelled_axes():
    page = section(search(points=50))
    root = svg_of(page)
    lines = {p.get("class"): p.get("points").split() for p in root.iter("polyline")}
    assert set(lines) == {"behaviours", "kept"}
    assert len(lines["behaviours"]) == len(lines["kept"]) == 50
    xs = [float(pair.split(",")[0]) for pair in lines["behaviours"]]
    assert xs == sorted(xs) and xs[0] >= 60 and xs[-1] <= 960 - 60
    ys = [float(pair.split(",")[1]) for pair in lines["behaviours"]]
    assert ys == sorted(ys, reverse=True)  # more behaviours, higher up
    texts = [t.text for t in root.iter("text")]
    assert {"distinct behaviours", "timelines kept", "elapsed (min)"} <= set(texts)
    assert "0" in texts and "<script" not in page


def test_time_units_follow_the_length_of_the_run():
    for seconds, unit in ((30, "s"), (600, "min"), (36_000, "h")):
        root = svg_of(chart([(0.0, 1, 1, 1), (float(seconds), 2, 2, 1)]))
        assert f"elapsed ({unit})" in [t.text for t in root.iter("text")]


def test_summary_line_sources_sorted_by_finds_and_kept_timelines():
    page = section(search(points=50, kept=5))
    assert "Generator <b>guided</b>: <b>79</b> distinct behaviours seen; <b>5</b> " \
           "timelines of 50 run kept as seeds for mutation." in page
    sources = re.findall(r"<tr><td>([^<]*)</td><td class='n'>(\d+)</td><td class='n'>(\d+)"
                         r"</td><td class='n'>([^<]*)</td>", page)
    assert sources == [("fault after hit", "10", "3", "30.0%"), ("fresh", "20", "2", "10.0%"),
                       ("lengthen", "0", "0", "—")]
    kept = page[page.index("<details><summary>Kept timelines (5)"):]
    assert kept.count("<details><summary>30 new</summary>") == 5
    assert kept.count("<li><code>assert pass k") == 5 * html_search._FEATURES
    assert "… and 22 more" in kept and "4 min 52 s" in kept  # 292 s: the last entry


def test_user_strings_are_escaped():
    s = search(points=3, kept=2)
    s["generator"] = EVIL
    s["sources"][0]["source"] = EVIL
    s["corpus"][1].update(origin=EVIL, why=EVIL, new=[EVIL, 'a "quoted" & <b>bold</b>'],
                          improved=[EVIL])
    page = section(s) + lineage([{"timeline": 3, "origin": EVIL}, {"timeline": EVIL}])
    assert "<script" not in page and "<b>bold" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 7
    # autoescaped by Jinja (markupsafe), which writes a double quote as &#34;
    assert "a &#34;quoted&#34; &amp; &lt;b&gt;bold&lt;/b&gt;" in page


def test_empty_series_malformed_points_and_a_single_point():
    s = search(points=0, kept=0)
    page = section(s)
    assert "<svg" not in page and "nothing to draw" in page and "No timeline was kept" in page
    assert "<b>0</b> timelines kept" in page
    s["over_time"] = [[1.0, 1, 5, 1], ["x", 2, 5, 1], [2.0, 2], None, [3.0, 3, -1, 1]]
    root = svg_of(section(s))
    assert [len(p.get("points").split()) for p in root.iter("polyline")] == [1, 1]
    assert len(list(root.iter("circle"))) == 2  # a lone point is still seen


def test_a_summary_without_search_says_so():
    for missing in (None, [], "guided"):
        assert section(missing) == ("<h2>Search</h2><p class='muted'>not recorded "
                                    "(this summary predates it)</p>")


def test_lineage_reads_back_to_the_fresh_draw_and_long_ones_are_cut():
    chain = [{"timeline": 42, "origin": "fault after hit+move"},
             {"timeline": 17, "origin": "lengthen"}, {"timeline": 3, "origin": "fresh"}]
    assert lineage(chain) == ("timeline 42 (fault after hit+move) ← 17 (lengthen) "
                              "← 3 (fresh)")
    assert lineage([]) == lineage(None) == ""
    long = [{"timeline": n, "origin": "move"} for n in range(100, 0, -1)]
    text = lineage(long)
    assert text.startswith("timeline 100 (move) ← 99 (move)") and text.endswith("← 1 (move)")
    assert "… 88 more" in text and text.count("(move)") == html_search._LINEAGE


def test_the_kept_list_is_capped():
    s = search(points=400, kept=html_search._CORPUS_ROWS + 30)
    page = section(s)
    assert page.count("<tr><td class='n'>") == html_search._CORPUS_ROWS
    assert "… and 30 more" in page and len(page) < 1_000_000
