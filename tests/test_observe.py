"""Structured log lines (text and JSON) and the Prometheus rendering of a snapshot of counts."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from agentbazaar.observe import configure_logging, event, prometheus_text, wants_prometheus


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger("agentbazaar")
    handlers, level, propagate = list(root.handlers), root.level, root.propagate
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    root.propagate = propagate


def logged(fmt: str, emit: object) -> str:
    out = io.StringIO()
    configure_logging(fmt, stream=out)
    assert callable(emit)
    emit()
    return out.getvalue()


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_carry_the_event_and_its_fields() -> None:
    text = logged(
        "json", lambda: event("agentbazaar.test", "x402.settle", payer="0xab", amount=1000)
    )
    (line,) = [json.loads(x) for x in text.splitlines()]
    assert line["event"] == "x402.settle" and line["payer"] == "0xab" and line["amount"] == 1000
    assert line["logger"] == "agentbazaar.test" and line["level"] == "info"
    assert line["ts"].endswith("+00:00")


@pytest.mark.usefixtures("restore_logging")
def test_json_keeps_ordinary_messages_and_a_field_cannot_overwrite_the_envelope() -> None:
    def emit() -> None:
        logging.getLogger("agentbazaar.x").warning("plain %s", "words")
        event("agentbazaar.x", "odd", level="forged", logger="forged")

    plain, odd = [json.loads(x) for x in logged("json", emit).splitlines()]
    assert plain == {**plain, "msg": "plain words", "level": "warning"}
    assert odd["level"] == "info" and odd["logger"] == "agentbazaar.x"


@pytest.mark.usefixtures("restore_logging")
def test_text_lines_quote_values_that_would_split() -> None:
    text = logged(
        "text",
        lambda: event("agentbazaar.t", "x402.paid_request", path="/quote", reason="no funds", n=2),
    )
    assert text.strip() == 'x402.paid_request path=/quote reason="no funds" n=2'


@pytest.mark.usefixtures("restore_logging")
def test_events_below_the_level_are_not_logged_and_bad_formats_are_refused() -> None:
    out = io.StringIO()
    configure_logging("json", level=logging.WARNING, stream=out)
    event("agentbazaar.t", "quiet", a=1)
    assert out.getvalue() == ""
    with pytest.raises(ValueError, match="text, json"):
        configure_logging("xml")


names = st.from_regex(r"[a-z]{1,12}", fullmatch=True)  # no suffix a family could claim


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(names, st.integers(0, 10**15), max_size=12), st.data())
def test_prometheus_text_round_trips_through_the_official_parser(
    counts: dict[str, int], data: st.DataObject
) -> None:
    gauges = set(data.draw(st.lists(st.sampled_from(sorted(counts) or ["x"]), unique=True)))
    text = prometheus_text(counts, prefix="bazaar_t", gauges=gauges).decode()
    parsed = {
        sample.name: (family.type, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    expected = {
        (f"bazaar_t_{k}" if k in gauges else f"bazaar_t_{k}_total"): (
            "gauge" if k in gauges else "counter",
            float(v),
        )
        for k, v in counts.items()
    }
    assert parsed == expected


@pytest.mark.parametrize(
    ("accept", "fmt", "wanted"),
    [
        ("text/plain;version=0.0.4", None, True),
        ("application/openmetrics-text;version=1.0.0", None, True),
        ("*/*", None, False),
        ("application/json", None, False),
        (None, None, False),
        ("text/plain", "json", False),
        ("application/json", "prometheus", True),
    ],
)
def test_which_requests_get_the_prometheus_format(
    accept: str | None, fmt: str | None, wanted: bool
) -> None:
    assert wants_prometheus(accept, fmt) is wanted
