"""The report JSON Schema (``report.schema.json``) and a validator for it."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_ID = "afe.report/1"


@cache
def report_schema() -> dict[str, Any]:
    text = resources.files("edge.report").joinpath("report.schema.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


@cache
def _validator() -> Any:
    import jsonschema

    schema = report_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def validation_errors(report: dict[str, Any]) -> list[str]:
    """Every schema violation of one report, as readable strings (empty if valid)."""
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in _validator().iter_errors(report)
    ]
