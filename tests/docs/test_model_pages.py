"""The model pages the docs build generates (docs/hooks/model_pages.py): one per built-in model, in the nav under
Models and listed on models.md, each holding its module's docstring and a row per Config field with the default
and the meaning `jointkl list models NAME` prints, its prose escaped so a docstring cannot turn into links, HTML or
table cells."""
from __future__ import annotations

import re
from dataclasses import fields

import yaml

from jointkl.objectives.registry import MODELS, builtin
from tests.docs.test_readme import ROOT, anchors, generated_pages, load_hook

HOOK = load_hook()


def test_every_built_in_model_has_a_page_in_the_nav():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert "docs/hooks/model_pages.py" in config["hooks"]
    nav = HOOK.on_config(config)["nav"]
    (models,) = [item["Models"] for item in nav if "Models" in item]
    assert models[0] == {"All models": "models.md"}
    assert [next(iter(m.values())) for m in models[1:]] == sorted(
        f"models/{name}.md" for name, cls in MODELS.items() if builtin(cls))
    assert len(nav) == len(config["nav"])                          # nothing else moved


def test_a_page_holds_the_docstring_and_every_option_as_jointkl_list_prints_it(cli):
    page = generated_pages()[ROOT / "docs" / "models" / "dali.md"]
    assert page.startswith("# `dali`: DALI: adversary on x plus the latent cycle term")
    assert "Decomposed Adversarial Learned Inference" in page          # the module's docstring
    code, listed, _ = cli("list", "models", "dali")
    assert code == 0
    options = listed.split("\ntrainer options")[0]
    printed = {m[0]: m for m in re.findall(r"^  (\w+)=(.*?)(?:  # (.*))?$", options, flags=re.M)}
    rows = re.findall(r"^\| `(\w+)` \| `(.*?)` \| (.*?) \| (.*) \|$", page, flags=re.M)
    assert [r[0] for r in rows] == [f.name for f in fields(MODELS["dali"].Config)] == list(printed)
    for name, default, values, meaning in rows:
        listed_help = HOOK.escape(printed[name][2])                        # a choice's values come first there
        assert default == printed[name][1] and listed_help.endswith(meaning), name
    assert dict((r[0], r[2]) for r in rows)["variant"] == "`gan`, `f`, `f-swapped`, `l2`"
    assert printed["variant"][2].startswith("gan | f | f-swapped | l2; ")
    assert dict((r[0], r[2]) for r in rows)["lam"] == "float or None"


def test_models_md_lists_every_page_where_its_marker_is():
    class Page:
        class file:
            src_uri = "models.md"
    text = (ROOT / "docs" / "models.md").read_text()
    out = HOOK.on_page_markdown(text, Page, None, None)
    listed = re.findall(r"^\| \[`(\w+)`\]\(models/\1\.md\) \| .+ \|$", out, flags=re.M)
    assert listed == sorted(name for name, cls in MODELS.items() if builtin(cls))
    assert HOOK.MARKER not in out


def test_prose_cannot_become_markup():
    prose = "E_q[log p](x) <b>bold</b> a | b *em* {1, 2} `keep [this](x) | *as is*`"
    assert HOOK.escape(prose) == (r"E_q\[log p\](x) &lt;b>bold&lt;/b> a \| b \*em\* \{1, 2} "
                                  "`keep [this](x) | *as is*`")
    md = HOOK.docstring("Title.\n\n    aligned   formula\n      more\n\nText after.")
    assert md == "Title.\n\n\n```text\naligned   formula\n  more\n```\n\nText after."


def test_the_generated_pages_link_to_files_and_anchors_that_exist():
    for page, text in generated_pages().items():
        for link in re.findall(r"\]\(([^)\s]+)\)", text):
            path, _, anchor = link.partition("#")
            target = (page.parent / path).resolve()
            assert target.is_file(), (page.name, link)
            assert not anchor or anchor in anchors(target), (page.name, link)
