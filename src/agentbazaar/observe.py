"""What the servers say: one structured log line per event, and metrics for Prometheus.

Events. ``event(logger, "x402.settle", payer=..., amount=..., tx=...)`` logs one line with
named fields. ``configure_logging("text")`` prints it as ``x402.settle payer=0x.. amount=1000``
(values with spaces quoted); ``configure_logging("json")`` as one JSON object per line with
``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``event`` and the fields, for a log pipeline.
Ordinary log records keep their message (``msg`` in JSON). Servers started by ``bazaar`` take the
format from ``--log-format`` (or ``BAZAAR_LOG_FORMAT``).

Metrics. ``prometheus_text(counts, prefix=..., gauges=...)`` renders a snapshot of named
counts in the Prometheus text exposition format with the official ``prometheus_client``:
counters as ``<prefix>_<name>_total``, the names in ``gauges`` (levels that go up and down) as
``<prefix>_<name>``. ``wants_prometheus`` reads an HTTP ``Accept`` header (and ``?format=``) so
one ``/metrics`` route answers a Prometheus scraper in its format and a person or a script
asking for JSON in JSON.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LOG_FORMATS = ("text", "json")
PROMETHEUS_CONTENT_TYPE = CONTENT_TYPE_LATEST
_EVENT = "bazaar_event"
_FIELDS = "bazaar_fields"
_NOT_A_NAME = re.compile(r"[^a-zA-Z0-9_]")


def event(logger: logging.Logger | str, name: str, /, **fields: Any) -> None:
    """Log the event ``name`` with its ``fields`` at INFO, as one line."""
    log = logging.getLogger(logger) if isinstance(logger, str) else logger
    if log.isEnabledFor(logging.INFO):
        log.info("%s", name, extra={_EVENT: name, _FIELDS: fields})


def event_fields(record: logging.LogRecord) -> dict[str, Any] | None:
    """The event name and fields of a record made by ``event`` (None for other records)."""
    name = getattr(record, _EVENT, None)
    if name is None:
        return None
    return {"event": name, **getattr(record, _FIELDS, {})}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, then the event and its fields (or msg)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = event_fields(record)
        if fields is not None:
            out.update({k: v for k, v in fields.items() if k not in out})
        else:
            out["msg"] = record.getMessage()
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """``event key=value ...`` for events, the message for other records."""

    def format(self, record: logging.LogRecord) -> str:
        fields = event_fields(record)
        if fields is None:
            line = record.getMessage()
        else:
            name = fields.pop("event")
            line = " ".join([str(name), *(f"{k}={_text_value(v)}" for k, v in fields.items())])
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _text_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text == "" or any(ch.isspace() or ch in '"=' for ch in text):
        return json.dumps(text)
    return text


def configure_logging(
    fmt: str = "text", *, level: int = logging.INFO, stream: TextIO | None = None
) -> logging.Handler:
    """Send the product's log records (logger ``agentbazaar`` and below) to ``stream``
    (stderr) in ``fmt``; replaces a handler this function installed before."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.set_name("agentbazaar")
    root = logging.getLogger("agentbazaar")
    for old in [h for h in root.handlers if h.get_name() == "agentbazaar"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    return handler


# ---- metrics -------------------------------------------------------------------------------
class _Snapshot(Collector):
    def __init__(
        self, counts: Mapping[str, int | float], prefix: str, gauges: Collection[str]
    ) -> None:
        self.counts, self.prefix, self.gauges = counts, prefix, gauges

    def collect(self) -> Iterator[Metric]:
        for name, value in sorted(self.counts.items()):
            full = _NOT_A_NAME.sub("_", f"{self.prefix}_{name}")
            if name in self.gauges:
                yield GaugeMetricFamily(full, f"{name} (now)", value=value)
            else:
                yield CounterMetricFamily(full, f"{name} (since start)", value=value)


def prometheus_text(
    counts: Mapping[str, int | float], *, prefix: str, gauges: Collection[str] = ()
) -> bytes:
    """``counts`` in the Prometheus text format (content type ``PROMETHEUS_CONTENT_TYPE``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(counts, prefix, gauges))
    return generate_latest(registry)


def wants_prometheus(accept: str | None, format_: str | None = None) -> bool:
    """Does this request want the Prometheus text format? ``?format=prometheus|json`` decides
    when given; otherwise an ``Accept`` naming ``text/plain`` or OpenMetrics (what a Prometheus
    scraper sends) does; ``*/*``, JSON or nothing gets JSON."""
    if format_:
        return format_.lower() in ("prometheus", "text")
    wanted = (accept or "").lower()
    return "text/plain" in wanted or "openmetrics" in wanted
