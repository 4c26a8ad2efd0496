"""MkDocs hook: one page per registered model, generated at build time from the source, so nothing on it is
written twice: the model module's docstring (joints, KL, estimators, equations), the class's docstring, and its
Config's fields with their defaults, allowed values and one-line meanings (the comments beside the fields, which
`jointkl list models NAME` prints too: `jointkl.training.config.option_help`).

The pages are docs/models/NAME.md in the built site only; they join the nav under Models, and docs/models.md's
marker line `<!-- model pages -->` becomes a table linking them."""
from __future__ import annotations

import inspect
import re
import sys
import textwrap
import typing
from dataclasses import MISSING, fields

from jointkl.objectives import MODELS
from jointkl.objectives.registry import builtin, summary
from jointkl.training.config import option_help

MARKER = "<!-- model pages -->"
INDEX = "models.md"


def models() -> dict[str, type]:
    """The built-in models by name (a model some installed package adds is not this project's to document)."""
    return {name: cls for name, cls in sorted(MODELS.items()) if builtin(cls)}


def path(name: str) -> str:
    return f"models/{name}.md"


def values(annotation) -> str:
    """What an option accepts, in words: a Literal's choices, else its type (`X | None` as 'X or None')."""
    if typing.get_origin(annotation) is typing.Literal:
        return ", ".join(f"`{v}`" for v in typing.get_args(annotation))
    args = typing.get_args(annotation)
    if type(None) in args:
        return " or ".join("None" if a is type(None) else values(a) for a in args)
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def option_rows(config) -> list[str]:
    """One Markdown table row per field of a Config dataclass: name, default, values, meaning."""
    hints, meaning = typing.get_type_hints(config), option_help(config)
    rows = []
    for f in fields(config):
        default = f.default if f.default is not MISSING else f.default_factory()
        rows.append(f"| `{f.name}` | `{default}` | {values(hints[f.name])} | {escape(meaning[f.name])} |")
    return rows


def escape(text: str) -> str:
    """Prose from a docstring or comment as literal Markdown text: outside `code spans`, brackets (which could
    close into links), angle brackets (raw HTML), pipes (table cells), asterisks (emphasis) and braces
    (attribute lists) are escaped; backticks stay code."""
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(p if p.startswith("`") else p.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
                   .replace("<", "&lt;").replace("|", "\\|").replace("*", "\\*").replace("{", "\\{") for p in parts)


def docstring(text: str) -> str:
    """A plain-text docstring as Markdown: its prose as paragraphs, its indented blocks (aligned formulas and
    tables) as preformatted text, exactly as written."""
    out, block = [], []

    def flush():
        if block:
            out.extend(["", "```text", *textwrap.dedent("\n".join(block)).strip("\n").splitlines(), "```", ""])
            block.clear()
    for line in inspect.cleandoc(text or "").splitlines():
        if line.startswith((" ", "\t")) or (block and not line.strip()):
            block.append(line)
        else:
            flush()
            out.append(escape(line))
    flush()
    return "\n".join(out).strip()


def page(name: str, cls: type) -> str:
    module = sys.modules[cls.__module__]
    rest = inspect.cleandoc(cls.__doc__ or "").partition("\n")[2].strip()    # the first line is the title
    return "\n".join([
        f"# `{name}`: {escape(summary(cls))}", "",
        f"*Generated from the source: the docstrings of `{cls.__module__}` and of `{cls.__qualname__}`, and the "
        f"fields of `{cls.__qualname__}.Config`. The same options, with their meanings: `jointkl list models "
        f"{name}`. All models: [{INDEX}](../{INDEX}).*", "",
        docstring(module.__doc__), "",
        *([docstring(rest), ""] if rest else []),
        "## Options", "",
        f"Set as `key=value` on `jointkl train {name}` or as keywords of `jointkl.train(\"{name}\", ...)`; the "
        "trainer's options, the same for every model, are in [running.md](../running.md#trainer-options).", "",
        "| option | default | values | meaning |", "|---|---|---|---|", *option_rows(cls.Config), ""])


def on_config(config):
    """Models in the nav becomes a section: the overview page, then each model's page."""
    pages = [{"All models": INDEX}, *({name: path(name)} for name in models())]
    config["nav"] = [{title: pages} if target == INDEX else {title: target}
                     for item in config["nav"] for title, target in item.items()]
    return config


def on_files(files, config):
    from mkdocs.structure.files import File
    for name, cls in models().items():
        files.append(File.generated(config, path(name), content=page(name, cls)))
    return files


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri != INDEX:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"docs/{INDEX} lost its marker line {MARKER!r}, where the model pages are listed")
    table = ["| model | what it is |", "|---|---|",
             *(f"| [`{name}`]({path(name)}) | {escape(summary(cls))} |" for name, cls in models().items())]
    return markdown.replace(MARKER, "\n".join(table))
