"""Prints the config key reference (Markdown) from the config dataclasses.

The text of each key comes from the string literal written under its field in
``edge/config.py``, so the README's reference cannot drift from the code:
``python -m edge.config_doc`` prints it, ``--update README.md`` rewrites the README's
copy, and a test checks the README holds it.
"""

from __future__ import annotations

import ast
import inspect
import sys

from edge import config as config_module


def field_docs() -> dict[tuple[str, str], str]:
    """(class name, field name) -> the docstring under that field, from edge/config.py
    and from the modules of the domains' own config tables."""
    docs: dict[tuple[str, str], str] = {}
    modules = {config_module.__name__: config_module}
    for tp in config_module.plugin_sections().values():
        modules.setdefault(tp.__module__, sys.modules[tp.__module__])
    for mod in modules.values():
        docs.update(_module_docs(mod))
    return docs


def _module_docs(mod: object) -> dict[tuple[str, str], str]:
    tree = ast.parse(inspect.getsource(mod))  # type: ignore[arg-type]
    docs: dict[tuple[str, str], str] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        body = node.body
        for i, stmt in enumerate(body[:-1]):
            nxt = body[i + 1]
            if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[(node.name, stmt.target.id)] = " ".join(nxt.value.value.split())
    return docs


def reference_markdown() -> str:
    docs = field_docs()
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, typ, default, owner in describe():
        text = docs.get((owner, key.rsplit(".", 1)[-1]), "")
        typ = typ.replace("|", "\\|")
        lines.append(f"| `{key}` | {typ} | `{default}` | {text} |")
    return "\n".join(lines) + "\n"


def describe() -> list[tuple[str, str, str, str]]:
    import dataclasses
    from typing import Annotated, get_args, get_origin, get_type_hints

    out: list[tuple[str, str, str, str]] = []

    def walk(cls: type, prefix: str) -> None:
        hints = get_type_hints(cls, include_extras=True)
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.metadata.get("internal"):
                continue
            tp = hints[f.name]
            base = get_args(tp)[0] if get_origin(tp) is Annotated else tp
            dotted = f"{prefix}.{f.name}" if prefix else f.name
            if dataclasses.is_dataclass(base):
                walk(base, dotted)  # type: ignore[arg-type]
                continue
            if f.default is not dataclasses.MISSING:
                default = repr(f.default)
            elif f.default_factory is not dataclasses.MISSING:
                default = repr(f.default_factory())
            else:
                default = ""
            if dotted == "agent.id":
                default = "<host name>"
            elif dotted == "agent.data_dir":
                default = "<config dir>/edge-data"
            out.append((dotted, fmt_type(tp), default.replace("PosixPath", "Path"),
                        cls.__name__))

    walk(config_module.Config, "")
    for key, tp in config_module.plugin_sections().items():  # domains' own tables
        walk(tp, key)
    return out


def fmt_type(tp: object) -> str:
    """A short human name for a config field's type."""
    import types
    import typing
    from pathlib import Path
    from typing import Annotated, Literal, get_args, get_origin

    origin = get_origin(tp)
    if origin is Annotated:
        base, *marks = get_args(tp)
        name = fmt_type(base)
        for m in marks:
            if isinstance(m, config_module.Range):
                lo = "" if m.lo is None else f"{m.lo:g}"
                hi = "" if m.hi is None else f"{m.hi:g}"
                name += f" [{lo}..{hi}]"
            elif m is config_module.MustExist:
                name += " (must exist)"
        return name
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return " or ".join(fmt_type(a) for a in args) + " (optional)"
    if origin is Literal:
        return " / ".join(repr(a) for a in get_args(tp))
    if origin is list:
        return f"list of {fmt_type(get_args(tp)[0])}"
    if tp is Path:
        return "path"
    return getattr(tp, "__name__", str(tp))


def update_readme(path: str) -> bool:
    """Rewrite the reference between the README's markers; True if it changed."""
    from pathlib import Path

    p = Path(path)
    text = p.read_text("utf-8")
    start, end = "<!-- config-reference:start -->\n", "<!-- config-reference:end -->"
    i, j = text.index(start) + len(start), text.index(end)
    new = text[:i] + reference_markdown() + text[j:]
    if new != text:
        p.write_text(new, "utf-8")
    return new != text


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m edge.config_doc",
        description="Print the config reference (Markdown table of every key), or rewrite "
                    "it between the README's config-reference markers.",
        epilog="example:\n  python -m edge.config_doc --update README.md",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--update", metavar="README", help="rewrite the reference in this file")
    args = ap.parse_args(argv)
    if args.update:
        print("updated" if update_readme(args.update) else "up to date")
    else:
        print(reference_markdown(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
