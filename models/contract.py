"""The typed feature contract of a model package (``model.json``).

A contract says exactly what a model eats and what it returns, so a model trained on
other features can never run silently: the loader checks it against the ONNX graph
(input names, element types, ranks and fixed dimensions) and against the features
the detector computes (names and order). Fields:

- ``name``, ``version``: the model's identity (``version`` is compared as dotted
  integers when a newer package is offered);
- ``sha256``: of ``model.onnx``; checked before onnxruntime sees the file;
- ``features``: for tabular models, the column names in order;
- ``inputs``: ``[{"name", "dtype", "shape"}]``, ``shape`` a list of ints with ``null``
  (or a string) for free dimensions such as the batch; optional for tabular models,
  where it defaults to one float32 input of shape ``[null, len(features)]``;
- ``contract_version``: this format's version (1);
- anything else (threshold, reference statistics, training record) is kept as-is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge.errors import ModelError

CONTRACT_VERSION = 1
DTYPES = {"float32": "tensor(float)", "float64": "tensor(double)", "int64": "tensor(int64)",
          "int32": "tensor(int32)", "uint8": "tensor(uint8)", "bool": "tensor(bool)"}


@dataclass(slots=True, frozen=True)
class InputSpec:
    name: str | None       # None: whatever the graph calls its only input
    dtype: str             # a key of DTYPES
    shape: tuple[int | None, ...]  # None = free dimension

    def matches(self, ort_input: Any) -> str | None:
        """Why the onnxruntime input does not match this spec (None if it does)."""
        if self.name is not None and ort_input.name != self.name:
            return f"input named {ort_input.name!r}, contract says {self.name!r}"
        if ort_input.type != DTYPES[self.dtype]:
            return f"input {ort_input.name!r} is {ort_input.type}, contract says {self.dtype}"
        shape = tuple(d if isinstance(d, int) else None for d in ort_input.shape)
        if len(shape) != len(self.shape):
            return f"input {ort_input.name!r} has rank {len(shape)}, contract says {len(self.shape)}"
        for i, (got, want) in enumerate(zip(shape, self.shape, strict=True)):
            if want is not None and got is not None and got != want:
                return f"input {ort_input.name!r} dimension {i} is {got}, contract says {want}"
        return None


@dataclass(slots=True, frozen=True)
class ModelContract:
    name: str
    version: str
    sha256: str
    features: tuple[str, ...] = ()
    inputs: tuple[InputSpec, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def version_key(self) -> tuple[int, ...]:
        return version_key(self.version)


def version_key(version: str) -> tuple[int, ...]:
    """"1.10.2" -> (1, 10, 2); a part that is not a number counts as 0."""
    return tuple(int(p) if p.isdigit() else 0 for p in str(version).split("."))


def parse_contract(raw: Any, source: str) -> ModelContract:
    """Validate ``model.json`` content; ModelError names the file and the field."""
    def bad(msg: str) -> ModelError:
        return ModelError(f"{source}: {msg}")

    if not isinstance(raw, dict):
        raise bad("the contract is not a JSON object")
    for key in ("name", "version", "sha256"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise bad(f"'{key}' must be a non-empty string")
    sha = raw["sha256"]
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise bad("'sha256' must be 64 lowercase hex digits")
    cv = raw.get("contract_version", CONTRACT_VERSION)
    if cv != CONTRACT_VERSION:
        raise bad(f"contract_version {cv!r} is not supported (this agent reads "
                  f"{CONTRACT_VERSION})")
    feats = raw.get("features", [])
    if not isinstance(feats, list) or not all(isinstance(f, str) for f in feats) \
            or len(set(feats)) != len(feats):
        raise bad("'features' must be a list of distinct strings")
    specs: list[InputSpec] = []
    inputs = raw.get("inputs")
    if inputs is None:
        if feats:
            specs.append(InputSpec(None, "float32", (None, len(feats))))
    else:
        if not isinstance(inputs, list) or not inputs:
            raise bad("'inputs' must be a non-empty list")
        for i, spec in enumerate(inputs):
            if not isinstance(spec, dict):
                raise bad(f"inputs[{i}] must be an object")
            dtype = spec.get("dtype")
            if dtype not in DTYPES:
                raise bad(f"inputs[{i}].dtype must be one of {', '.join(DTYPES)}")
            shape = spec.get("shape")
            if not isinstance(shape, list) or not shape:
                raise bad(f"inputs[{i}].shape must be a non-empty list")
            dims: list[int | None] = []
            for d in shape:
                if isinstance(d, bool) or not (d is None or isinstance(d, (int, str))):
                    raise bad(f"inputs[{i}].shape holds {d!r}")
                dims.append(d if isinstance(d, int) else None)
            name = spec.get("name")
            if name is not None and not isinstance(name, str):
                raise bad(f"inputs[{i}].name must be a string")
            specs.append(InputSpec(name, dtype, tuple(dims)))
    return ModelContract(raw["name"], raw["version"], sha, tuple(feats), tuple(specs), raw)
