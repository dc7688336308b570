"""Logging set-up for the entry points: plain text, or one JSON object per line."""

from __future__ import annotations

import json
import logging
import sys


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {"ts": round(record.created, 3), "level": record.levelname, "logger": record.name,
               "msg": record.getMessage()}
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            doc.update(extra)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def configure_logging(level: str = "INFO", as_json: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if as_json else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, str(level).upper(), logging.INFO))


def announce(text: str, as_json: bool = False, logger: str = "wattwise") -> None:
    """A start-up line for stdout, where a person or a supervisor reads the ports chosen: plain,
    or with --log-json one object in the log's own format, so a JSON log pipeline reading the
    container's output parses every line."""
    if as_json:
        record = logging.LogRecord(logger, logging.INFO, __file__, 0, text, None, None)
        text = JsonFormatter().format(record)
    print(text, flush=True)
