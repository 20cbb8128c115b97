"""The end-of-test text in k6 v1's layout (surge/results/summary_text.py), golden files included.

The summary data is built here from fixed sinks (no live run), so every golden is
deterministic: the ticket-purchase scenario's series (scenarios/ticket_purchase.py: its custom
metrics, its ``{scenario:purchase}`` thresholds and its trend stats) with two workers, and a
shop with nested groups and two scenarios. The goldens live in tests/results/golden/; after a
deliberate change to the layout, regenerate them and review the diff::

    SURGE_REGEN_GOLDEN=1 python -m pytest -q -p no:cacheprovider tests/results/test_summary_text.py
    git diff tests/results/golden/

They were checked against k6's own renderer: ``internal/js/summary.js`` (unchanged from k6
1.2 to 2.2) run under node on the report :func:`build_report` makes gives the same text, but
for the trailing spaces surge strips. That check runs here too when pointed at a copy of that
file (k6's code is not vendored)::

    git -C <k6 clone> show v1.8.1:internal/js/summary.js > /tmp/k6-summary.js
    SURGE_K6_SUMMARY_JS=/tmp/k6-summary.js python -m pytest -q -p no:cacheprovider tests/results/test_summary_text.py
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from surge.common.api import check_key
from surge.common.metrics import (
    BUILTIN_METRICS,
    CounterSink,
    GaugeSink,
    MetricDef,
    MetricType,
    RateSink,
    TrendSink,
    ValueType,
    trend_stat,
)
from surge.common.sketch import Sketch
from surge.common.endpoint_stats import DATA_RECEIVED, DATA_SENT, DURATION, FAILURES, EndpointRow, failure_tags
from surge.results.endpoints import EndpointTable
from surge.results.summary import SeriesResult, build_summary
from surge.results.summary_text import build_report, render_report, text_summary
from surge.results.thresholds import Verdict

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("SURGE_REGEN_GOLDEN") == "1"
B = BUILTIN_METRICS
TP_STATS = ("avg", "min", "med", "max", "p(90)", "p(95)", "p(99)")  # ticket_purchase's summaryTrendStats


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if REGEN:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
    assert path.exists(), f"no golden {path}; make it with SURGE_REGEN_GOLDEN=1 (see the module docstring)"
    assert text + "\n" == path.read_text(encoding="utf-8"), f"{name} differs; see the module docstring"


def trend(samples: list[float]) -> TrendSink:
    return TrendSink(Sketch.from_samples(samples))


def gauge(*points: tuple[float, float]) -> GaugeSink:
    g = GaugeSink()
    for value, at_s in points:
        g.set(value, at_s)
    return g


def latencies(n: int, scale: float = 1.0) -> list[float]:
    """n fixed, spread-out latencies in ms (no randomness: the goldens must not move)."""
    return [round((11.73 + (i * 37) % 187 + (i % 7) * 0.13) * scale, 3) for i in range(n)]


def judged(sink: TrendSink | RateSink | CounterSink, source: str, duration_s: float) -> bool:
    """Whether ``source`` held on ``sink`` (the few forms the fixtures use)."""
    m = re.fullmatch(r"(\w+|p\(\d+\))\s*([<>])\s*([\d.]+)", source)
    assert m is not None, source
    agg, op, bound = m.group(1), m.group(2), float(m.group(3))
    if isinstance(sink, TrendSink):
        value = trend_stat(sink.sketch, agg)
    else:
        value = sink.values(duration_s, ())[agg]
    return value < bound if op == "<" else value > bound


def ticket_purchase_data(*, slow: bool = False, trend_stats: tuple[str, ...] = TP_STATS,
                         options: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ticket-purchase run (349 requests over 8.26 s on two workers); ``slow`` breaks its thresholds."""
    n, duration_s = 349, 8.26
    scale = 4.0 if slow else 1.0
    failed = 9 if slow else 0
    lat = latencies(n, scale)
    checkout = MetricDef("checkout_duration", MetricType.TREND, ValueType.TIME)
    errors = MetricDef("purchase_errors", MetricType.RATE)
    sinks: dict[str, tuple[MetricDef, Any]] = {
        "checkout_duration": (checkout, trend(lat)),
        "purchase_errors": (errors, RateSink(failed + (40 if slow else 0), n)),
        "checks": (B["checks"], RateSink(4 * n - failed * 2 - (40 if slow else 0), 4 * n)),
        "checks{scenario:purchase}": (B["checks"], RateSink(4 * n - failed * 2 - (40 if slow else 0), 4 * n)),
        "data_received": (B["data_received"], CounterSink(100_470)),
        "data_sent": (B["data_sent"], CounterSink(171_359)),
        "http_req_blocked": (B["http_req_blocked"], trend([0.004 + (i % 5) * 0.0011 for i in range(n)])),
        "http_req_connecting": (B["http_req_connecting"], trend([0.0] * (n - 100) + [0.21] * 100)),
        "http_req_duration": (B["http_req_duration"], trend(lat)),
        "http_req_duration{scenario:purchase}": (B["http_req_duration"], trend(lat)),
        "http_req_failed": (B["http_req_failed"], RateSink(failed, n)),
        "http_req_failed{scenario:purchase}": (B["http_req_failed"], RateSink(failed, n)),
        "http_req_receiving": (B["http_req_receiving"], trend([0.05 + (i % 3) * 0.01 for i in range(n)])),
        "http_req_sending": (B["http_req_sending"], trend([0.02 + (i % 4) * 0.005 for i in range(n)])),
        "http_req_tls_handshaking": (B["http_req_tls_handshaking"], trend([0.0] * n)),
        "http_req_waiting": (B["http_req_waiting"], trend([x - 0.07 for x in lat])),
        "http_reqs": (B["http_reqs"], CounterSink(n)),
        "iteration_duration": (B["iteration_duration"], trend([536.34 + (i * 53) % 2043 for i in range(n)])),
        "iterations": (B["iterations"], CounterSink(n)),
        "vus": (B["vus"], gauge((0, 0.0), (100, 2.0), (2, 8.2))),
        "vus_max": (B["vus_max"], gauge((100, 0.0))),
        "surge_cpu": (B["surge_cpu"], trend([0.0107 + (i % 9) * 0.005 for i in range(16)])),
        "surge_loop_lag": (B["surge_loop_lag"], trend([0.0] + [1.53 * (i % 6) for i in range(1, 16)] + [41.03])),
        "surge_saturated": (B["surge_saturated"], RateSink(0, 16)),
    }
    thresholds = {
        "checkout_duration": ["p(95)<500"],
        "purchase_errors": ["rate<0.01"],
        "http_req_duration{scenario:purchase}": ["p(95)<500", "p(99)<1500"],
        "http_req_failed{scenario:purchase}": ["rate<0.01"],
        "checks{scenario:purchase}": ["rate>0.99"],
    }
    verdicts = [Verdict(key, src, judged(sinks[key][1], src, duration_s), 0.0)
                for key, sources in thresholds.items() for src in sources]
    checks = {
        "status is 200": (n - failed, failed),
        "has checkout URL": (n - failed, failed),
        "response under 500ms": (n - (40 if slow else 0), 40 if slow else 0),
        "response under 1s": (n, 0),
    }
    data = build_summary(
        series=[SeriesResult(key, metric, sink) for key, (metric, sink) in sinks.items()],
        verdicts=verdicts, checks=checks, duration_s=duration_s, trend_stats=trend_stats, options=options,
    )
    data["state"]["workers"] = [
        {"name": "local-0", "requests": 173, "failures": failed, "cpuMean": 0.0355, "cpuMax": 0.0532,
         "loopLagMeanMs": 3.7, "loopLagMaxMs": 41.03, "saturatedShare": 0.0, "overloaded": False},
        {"name": "local-1", "requests": 176, "failures": 0, "cpuMean": 0.037, "cpuMax": 0.0547,
         "loopLagMeanMs": 3.39, "loopLagMaxMs": 29.54, "saturatedShare": 0.0, "overloaded": False},
    ]
    return data


def shop_data() -> tuple[dict[str, Any], dict[str, Any]]:
    """Two scenarios (browse, buy), nested groups, a failing check; and the session's per-scenario entries."""
    duration_s = 10.0
    series = [
        SeriesResult("http_reqs", B["http_reqs"], CounterSink(300)),
        SeriesResult("http_req_duration", B["http_req_duration"], trend(latencies(300))),
        SeriesResult("http_req_duration{group:::checkout}", B["http_req_duration"], trend(latencies(100, 2.0))),
        SeriesResult("http_req_duration{scenario:buy}", B["http_req_duration"], trend(latencies(100, 2.0))),
        SeriesResult("http_req_failed", B["http_req_failed"], RateSink(3, 300)),
        SeriesResult("checks", B["checks"], RateSink(397, 400)),
        SeriesResult("group_duration", B["group_duration"], trend(latencies(200, 3.0))),
        SeriesResult("group_duration{group:::checkout}", B["group_duration"], trend(latencies(100, 3.0))),
        SeriesResult("iterations", B["iterations"], CounterSink(200)),
        SeriesResult("vus", B["vus"], gauge((4, 0.0), (4, 9.0))),
        SeriesResult("cart_items", MetricDef("cart_items", MetricType.GAUGE), gauge((3, 1.0), (1, 2.0), (7, 3.0))),
        SeriesResult("orders", MetricDef("orders", MetricType.COUNTER), CounterSink(97)),
    ]
    verdicts = [
        Verdict("http_req_duration", "p(95)<300", True, 0.0),
        Verdict("http_req_duration{group:::checkout}", "p(95)<300", False, 0.0),
        Verdict("http_req_duration{scenario:buy}", "avg<1000", True, 0.0),
        Verdict("orders", "count>50", True, 0.0),
        Verdict("orders", "rate>5", True, 0.0),
    ]
    checks = {
        "home is 200": (100, 0),
        check_key("::checkout", ""): (0, 0),
        check_key("::checkout", "cart is 200"): (100, 0),
        check_key("::checkout::pay", ""): (0, 0),
        check_key("::checkout::pay", "paid"): (97, 3),
        check_key("::checkout::pay", "home is 200"): (100, 0),  # the same name in another group
        check_key("::browse", ""): (0, 0),
    }
    data = build_summary(series=series, verdicts=verdicts, checks=checks, duration_s=duration_s)
    per_scenario = build_summary(
        series=[
            SeriesResult("http_reqs{scenario:browse}", B["http_reqs"], CounterSink(200)),
            SeriesResult("http_reqs{scenario:buy}", B["http_reqs"], CounterSink(100)),
            SeriesResult("http_req_failed{scenario:buy}", B["http_req_failed"], RateSink(3, 100)),
            SeriesResult("iterations{scenario:browse}", B["iterations"], CounterSink(100)),
            SeriesResult("iterations{scenario:buy}", B["iterations"], CounterSink(100)),
            # the same key as a threshold's series: data's entry wins
            SeriesResult("http_req_duration{scenario:buy}", B["http_req_duration"], trend([1.0])),
        ],
        verdicts=[], checks={}, duration_s=duration_s,
    )["metrics"]
    # the per-endpoint table (full mode's ENDPOINTS), as the coordinator merges it
    table = EndpointTable()
    for row, samples, failed in ((EndpointRow("http://shop.test/items/${}", "GET", "browse", "::browse"), latencies(200), 0),
                                 (EndpointRow("checkout", "POST", "buy", "::checkout"), latencies(100, 2.0), 3)):
        table.add(row.key(DURATION), trend(samples))
        table.add(row.key(DATA_RECEIVED), CounterSink(310.0 * len(samples)))
        table.add(row.key(DATA_SENT), CounterSink(120.0 * len(samples)))
        if failed:
            table.add(row.key(FAILURES, *failure_tags(503, 1503)), CounterSink(float(failed)))
    data["endpoints"] = table.summary(duration_s)
    return data, per_scenario


# --------------------------------------------------------------------------- goldens


def test_golden_ticket_purchase_compact() -> None:
    assert_golden("ticket_purchase_compact.txt", text_summary(ticket_purchase_data()))


def test_golden_ticket_purchase_full() -> None:
    assert_golden("ticket_purchase_full.txt", text_summary(ticket_purchase_data(), summary_mode="full"))


def test_golden_failed_thresholds() -> None:
    assert_golden("ticket_purchase_failed.txt", text_summary(ticket_purchase_data(slow=True)))


def test_golden_time_unit_ms() -> None:
    assert_golden("ticket_purchase_time_unit_ms.txt",
                  text_summary(ticket_purchase_data(options={"summaryTimeUnit": "ms"})))


def test_golden_custom_trend_stats() -> None:
    # p(95) and p(99) are judged but not listed: the THRESHOLDS section still shows their values
    assert_golden("ticket_purchase_trend_stats.txt",
                  text_summary(ticket_purchase_data(trend_stats=("count", "min", "med", "p(99.9)"))))


def test_golden_colours() -> None:
    assert_golden("ticket_purchase_colors.txt", text_summary(ticket_purchase_data(slow=True), enable_colors=True))


def test_golden_groups_and_scenarios_full() -> None:
    data, per_scenario = shop_data()
    assert_golden("shop_full.txt", text_summary(data, summary_mode="full", extra_metrics=per_scenario))


def test_golden_groups_and_scenarios_compact() -> None:
    data, per_scenario = shop_data()
    assert_golden("shop_compact.txt", text_summary(data, extra_metrics=per_scenario))


# --------------------------------------------------------------------------- k6's rules, one by one


def lines_of(text: str) -> list[str]:
    return text.split("\n")


def section(text: str, title: str) -> list[str]:
    """The lines of one ``█`` section, without its title."""
    lines = lines_of(text)
    start = lines.index(f"  █ {title}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("  █ ")), len(lines))
    return lines[start + 1 : end]


def test_thresholds_come_first_then_total_results_then_groups_and_sorted_scenarios() -> None:
    data, per_scenario = shop_data()
    titles = [line for line in lines_of(text_summary(data, summary_mode="full", extra_metrics=per_scenario))
              if line.startswith("  █ ")]
    assert titles == ["  █ THRESHOLDS", "  █ TOTAL RESULTS", "  █ GROUP: checkout", "  █ GROUP: browse",
                      "  █ SCENARIO: browse", "  █ SCENARIO: buy", "  █ ENDPOINTS"]
    assert [t for t in lines_of(text_summary(data)) if t.startswith("  █ ")] == ["  █ THRESHOLDS", "  █ TOTAL RESULTS"]


def test_each_threshold_shows_its_mark_and_the_value_it_was_judged_on() -> None:
    lines = section(text_summary(ticket_purchase_data(slow=True)), "THRESHOLDS")
    i = lines.index("    http_req_duration{scenario:purchase}")  # its parent has no thresholds: the whole key
    assert re.fullmatch(r"    ✗ 'p\(95\)<500' p\(95\)=\d+\.?\d*ms", lines[i + 1]), lines[i + 1]
    assert re.fullmatch(r"    ✓ 'p\(99\)<1500' p\(99\)=\d+\.?\d*ms", lines[i + 2]), lines[i + 2]
    assert "    ✗ 'rate<0.01' rate=2.57%" in lines  # http_req_failed: 9 of 349
    assert "    ✗ 'rate>0.99' rate=95.84%" in lines  # checks{scenario:purchase}: 1338 of 1396
    assert lines[lines.index("    checks{scenario:purchase}") + 1 :][:1] == ["    ✗ 'rate>0.99' rate=95.84%"]


def test_a_sub_metric_whose_parent_has_thresholds_is_shown_under_it() -> None:
    data, _ = shop_data()
    lines = section(text_summary(data), "THRESHOLDS")
    start = lines.index("    http_req_duration")
    assert lines[start + 1].startswith("    ✓ 'p(95)<300' p(95)=")
    assert lines[start + 2 : start + 5] == ["", "      {group:::checkout}", lines[start + 4]]
    assert lines[start + 4].startswith("      ✗ 'p(95)<300' p(95)=")
    # a counter's rate threshold shows its rate column, its count threshold the count
    assert "    ✓ 'count>50' count=97" in lines and "    ✓ 'rate>5' rate=9.7/s" in lines


def test_total_results_groups_metrics_as_k6_custom_first_and_surge_last() -> None:
    text = text_summary(ticket_purchase_data())
    headings = [line.strip() for line in section(text, "TOTAL RESULTS") if re.fullmatch(r"    [A-Z_]+", line)]
    assert headings == ["CUSTOM", "HTTP", "EXECUTION", "NETWORK", "SURGE"]
    lines = section(text, "TOTAL RESULTS")
    assert lines[lines.index("    CUSTOM") + 1].startswith("    checkout_duration....")
    assert lines[lines.index("    SURGE") + 1].startswith("    surge_cpu....")


def test_compact_leaves_out_the_http_phases_and_full_shows_them() -> None:
    compact, full = text_summary(ticket_purchase_data()), text_summary(ticket_purchase_data(), summary_mode="full")
    phases = ("http_req_blocked", "http_req_connecting", "http_req_tls_handshaking", "http_req_sending",
              "http_req_waiting", "http_req_receiving")
    assert not any(p in compact for p in phases)
    assert all(f"    {p}..." in full for p in phases)
    # neither mode lists checks or group_duration as metrics
    data, _ = shop_data()
    for text in (text_summary(data), text_summary(data, summary_mode="full")):
        assert "group_duration" not in text and "    checks..." not in text and "checks{" not in text


def test_checks_block_totals_then_every_check_by_name_once() -> None:
    data, _ = shop_data()
    lines = section(text_summary(data), "TOTAL RESULTS")
    assert lines[:8] == [
        "",
        "    checks_total.......: 400    40/s",
        "    checks_succeeded...: 99.25% 397 out of 400",
        "    checks_failed......: 0.75%  3 out of 400",
        "",
        "    ✓ home is 200",  # 100 at the top and 100 in ::checkout::pay, one line as in k6
        "    ✓ cart is 200",
        "    ✗ paid",
    ]
    assert lines[8] == "      ↳  97% — ✓ 97 / ✗ 3"


def test_sub_metrics_follow_their_parent_with_dots_aligned() -> None:
    lines = section(text_summary(ticket_purchase_data()), "TOTAL RESULTS")
    i = lines.index(next(line for line in lines if line.startswith("    http_req_duration.")))
    assert lines[i + 1].startswith("      { scenario:purchase }...: avg=")
    named = [line for line in lines if "...: " in line and not line.startswith("    checks_")]
    assert len({line.index(": ") for line in named}) == 1
    assert min(len(m) for m in re.findall(r"\.{3,}:", "\n".join(named))) == len("...:")  # the longest gets 3


def test_full_mode_sections_per_group_and_per_scenario() -> None:
    data, per_scenario = shop_data()
    text = text_summary(data, summary_mode="full", extra_metrics=per_scenario)
    checkout = section(text, "GROUP: checkout")
    assert "    ✓ cart is 200" in checkout and "    ↳ GROUP: pay" in checkout
    assert "      ✗ paid" in checkout and "          ↳  97% — ✓ 97 / ✗ 3" in checkout  # k6's detail indent
    assert any(line.startswith("    http_req_duration...: avg=") for line in checkout)  # its {group:::checkout}
    assert "    checks_total.......: 100     10/s" in checkout
    assert section(text, "GROUP: browse") == ["", ""]  # a group that ran without checks or series: a title
    buy = section(text, "SCENARIO: buy")
    assert "    http_reqs...........: 100   10/s" in buy and "    iterations..........: 100   10/s" in buy
    # the threshold's series wins over the session's entry of the same key
    assert any(line.startswith("    http_req_duration...: avg=") and "min=23.46ms" in line for line in buy)
    browse = section(text, "SCENARIO: browse")
    assert not any("http_req_duration" in line for line in browse)


def test_extra_metrics_only_feed_full_mode() -> None:
    data, per_scenario = shop_data()
    assert text_summary(data, extra_metrics=per_scenario) == text_summary(data)
    assert "scenario:browse" not in text_summary(data, summary_mode="full", extra_metrics=per_scenario)


def test_colours_are_k6s_and_leave_the_plain_text_once_stripped() -> None:
    data = ticket_purchase_data(slow=True)
    plain, coloured = text_summary(data), text_summary(data, enable_colors=True)
    assert "\x1b" not in plain
    assert "  █ \x1b[1mTHRESHOLDS\x1b[0m" in coloured
    assert "\x1b[31m✗\x1b[0m \x1b[37m'p(95)<500'\x1b[0m \x1b[37mp(95)\x1b[0m=\x1b[36m" in coloured
    assert "\x1b[32m✓ response under 1s\x1b[0m" in coloured
    assert "\x1b[2;37m...:\x1b[0m" in coloured and "\x1b[1mCUSTOM\x1b[0m" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain


def test_time_unit_fixes_every_duration() -> None:
    text = text_summary(ticket_purchase_data(options={"summaryTimeUnit": "s"}))
    line = next(line for line in lines_of(text) if line.startswith("    iteration_duration."))
    assert re.search(r"avg=\d+\.\d\ds +min=0\.54s", line), line


def test_indent_goes_before_every_line_that_is_not_blank() -> None:
    data = ticket_purchase_data()
    plain, indented = text_summary(data), text_summary(data, indent=">> ")
    assert indented.split("\n") == [">> " + line if line else line for line in plain.split("\n")]


def test_surge_cpu_is_shown_as_a_percentage_of_one_core() -> None:
    data = {
        "metrics": {
            "surge_cpu": {"type": "trend", "contains": "default",
                          "values": {"avg": 0.0047, "min": 0.001, "med": 0.004, "max": 0.5, "p(90)": 0.25, "p(95)": 1.25}},
            "vus": {"type": "gauge", "contains": "default", "values": {"value": 1, "min": 1, "max": 1}},
        },
        "options": {"summaryTrendStats": ["avg", "min", "med", "max", "p(90)", "p(95)"]},
    }
    line = next(line for line in lines_of(text_summary(data)) if "surge_cpu" in line)
    assert "avg=0.47%" in line and "min=0.1%" in line and "max=50%" in line and "p(95)=125%" in line


def test_empty_or_partial_data_never_crashes() -> None:
    assert text_summary({}) == ""
    assert text_summary({}, summary_mode="full") == ""
    assert text_summary({"metrics": {"x{bad": {"type": "counter"}}}, summary_mode="full").startswith("  █ TOTAL")
    with pytest.raises(ValueError, match="summary mode"):
        text_summary({}, summary_mode="legacy")  # type: ignore[arg-type]


def test_the_surge_package_exposes_it_as_k6s_textSummary() -> None:
    import surge

    data = ticket_purchase_data()
    assert surge.text_summary(data) == text_summary(data)
    assert surge.text_summary(data, summary_mode="full") == text_summary(data, summary_mode="full")


# --------------------------------------------------------------------------- against k6's own renderer

K6_SUMMARY_JS = os.environ.get("SURGE_K6_SUMMARY_JS", "")

# Our few lines, not k6's: load the given summary.js and render each report with its textSummary.
_NODE_RUNNER = """
const summary = require(process.argv[1]);
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
process.stdout.write(JSON.stringify(cases.map(c => summary.textSummary(c.report, c.options))));
"""


@pytest.mark.skipif(not K6_SUMMARY_JS or shutil.which("node") is None,
                    reason="set SURGE_K6_SUMMARY_JS to k6's internal/js/summary.js (and have node)")
def test_the_renderer_prints_what_k6s_summary_js_prints() -> None:
    shop, per_scenario = shop_data()
    cases = []
    for data, extra in [(ticket_purchase_data(), None), (ticket_purchase_data(slow=True), None),
                        (ticket_purchase_data(options={"summaryTimeUnit": "us"}), None), (shop, per_scenario)]:
        # surge_cpu is surge's own (a share of a core, shown as a percentage): k6 has no such rule
        data["metrics"] = {k: v for k, v in data["metrics"].items() if not k.startswith("surge_cpu")}
        for mode in ("compact", "full"):
            for colors in (False, True):
                report = build_report(data, mode, extra)
                opts = {"enableColors": colors, "summaryTrendStats": data["options"]["summaryTrendStats"],
                        "summaryTimeUnit": data["options"]["summaryTimeUnit"]}
                cases.append((report, opts))
    out = subprocess.run(
        ["node", "-e", _NODE_RUNNER, str(Path(K6_SUMMARY_JS).resolve())],
        input=json.dumps([{"report": r, "options": o} for r, o in cases]),
        capture_output=True, text=True, timeout=60, check=True,
    )
    for (report, opts), theirs in zip(cases, json.loads(out.stdout), strict=True):
        expected = "\n".join(line.rstrip() for line in theirs.split("\n")).strip("\n")
        ours = render_report(report, trend_stats=opts["summaryTrendStats"], time_unit=opts["summaryTimeUnit"],
                             enable_colors=opts["enableColors"])
        assert ours == expected
