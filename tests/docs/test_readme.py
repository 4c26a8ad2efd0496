"""README.md runs as written: its Python blocks execute (with tiny networks and a few steps in place of its
settings), the VAE declaration near its top builds a model that trains, every command line of its quick start
parses, it stays within 200 lines, and every relative link in it and in docs/*.md points to a file (and, with
an anchor, to an anchor) that exists. docs/index.md's first runs are held to the same."""
from __future__ import annotations

import ast
import functools
import importlib.util
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import jointkl
import jointkl.declare
from jointkl.cli import _parser
from jointkl.joints import decoder, encoder
from jointkl.objectives import registry
from jointkl.objectives.registry import MODELS
from tests.helpers import registry_kept

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
INDEX = ROOT / "docs" / "index.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
TINY = dict(hidden=8, layers=1, batch_size=32, log_every=2, ckpt_every=2, device="cpu")
STEPS = 4


def blocks(page: Path, lang: str, text: str | None = None) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", text if text is not None else page.read_text(), flags=re.S | re.M)


def section(page: Path, title: str) -> str:
    """The text of the `## title` section of a page, up to the next `## ` heading."""
    text = page.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


@pytest.fixture(autouse=True)
def clean_registry():
    """Every test leaves the model registry as it found them."""
    yield from registry_kept()


def test_the_readme_is_at_most_200_lines():
    n = len(README.read_text().splitlines())
    assert n <= 200, f"README.md has {n} lines; move detail into docs/"


def test_the_readme_lists_every_registered_model_once():
    table = section(README, "Models")
    rows = re.findall(r"^\| `([a-z_0-9]+)` \|", table, flags=re.M)
    assert sorted(rows) == sorted(set(rows)), "a model has two rows"
    assert set(rows) == set(MODELS), (set(MODELS) - set(rows), set(rows) - set(MODELS))


def test_the_readme_keeps_the_two_set_up_commands():
    lines = [ln.split("#")[0].strip() for ln in blocks(README, "bash", section(README, "Set-up: two commands"))[0]
             .splitlines()]
    assert [ln for ln in lines if ln] == ["make run", "make test"]


# ---------------------------------------------------------------------------------------------------- Python


def excerpt_and_sessions(page: Path) -> tuple[list[str], list[str]]:
    """A page's Python blocks: excerpts of a model's `declare()` (they use `self`) and sessions (the rest)."""
    code = blocks(page, "python")
    return [c for c in code if "self." in c], [c for c in code if "self." not in c]


def test_the_readme_has_its_python_blocks():
    excerpts, sessions = excerpt_and_sessions(README)
    assert len(excerpts) == 1 and len(sessions) >= 1
    assert "KL(q, p)" in excerpts[0]


@dataclass(frozen=True)
class ExcerptConfig:
    latent_dim: int = 2             # d, the size of z
    hidden: int = 8                 # units per hidden layer
    layers: int = 1                 # hidden layers


def run_excerpt(code: str, model):
    """Runs a README excerpt as the body of `model.declare()`, with the names of jointkl.declare in scope;
    the value of its last line is the declaration."""
    tree = ast.parse(code)
    assert isinstance(tree.body[-1], ast.Expr), "the excerpt ends with the Declaration"
    last = ast.Expression(tree.body.pop().value)
    scope = {**vars(jointkl.declare), "self": model, "d": model.cfg.latent_dim}
    exec(compile(tree, str(README), "exec"), scope)
    return eval(compile(last, str(README), "eval"), scope)


def test_the_vae_declaration_builds_a_model_that_trains(tmp_path):
    (code,), _ = excerpt_and_sessions(README)

    @registry.register
    class ReadmeVAE(jointkl.declare.Declared):
        """The README's VAE declaration."""
        name, Config = "readme_vae", ExcerptConfig

        def declare(self):
            c = self.cfg
            self.q_z = encoder("gaussian", self.data_shape, c.latent_dim, c.hidden, c.layers)
            self.p_x = decoder("bernoulli", c.latent_dim, self.data_shape, c.hidden, c.layers)
            return run_excerpt(code, self)

    run = tmp_path / "readme_vae"
    model = jointkl.train("readme_vae", data="binary2x2", steps=STEPS, out=run, progress=False,
                          batch_size=32, log_every=2, ckpt_every=2, device="cpu")
    assert model.sample(5).shape == (5, 1, 2, 2)
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert any(h.startswith("vae/") for h in header), header     # the one player, named as declared
    assert (run / "checkpoints" / f"step-{STEPS:08d}").is_dir()


@pytest.mark.parametrize("page", [README, INDEX], ids=lambda p: p.name)
def test_the_python_sessions_run(page, tmp_path, monkeypatch):
    real = jointkl.train

    def small(*args, **kw):                              # the page's call, with tiny nets and a few steps
        return real(*args, **{**kw, "steps": STEPS, "progress": False, **TINY})
    monkeypatch.setattr(jointkl, "train", small)
    monkeypatch.chdir(tmp_path)
    _, sessions = excerpt_and_sessions(page)
    assert sessions
    for code in sessions:
        scope: dict = {}
        exec(compile(code, str(page), "exec"), scope)
        if "model" in scope:                             # the quick start's VAE: what its comments say
            assert scope["x"].shape == (1000, 1, 2, 2)
            assert scope["ll"].shape == (1000,)
            meta = yaml.safe_load((tmp_path / "runs" / "vae" / "config.yaml").read_text())
            assert meta["model"] == "vae" and meta["train"]["steps"] == STEPS
    assert "jointkl" in sys.modules


# ---------------------------------------------------------------------------------------------------- shell


def command_lines(page: Path, title: str) -> list[list[str]]:
    """The `jointkl ...` command lines of a section's bash blocks, as argv without the program."""
    out = []
    for block in blocks(page, "bash", section(page, title)):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0].endswith("jointkl"):
                out.append(words[1:])
    return out


@pytest.mark.parametrize("page,title", [(README, "Quick start"), (INDEX, "First runs")],
                         ids=lambda v: getattr(v, "name", v))
def test_the_quick_start_command_lines_parse(page, title):
    lines = command_lines(page, title)
    assert len(lines) >= 4
    for argv in lines:
        args, rest = _parser().parse_known_args(argv)      # exits (SystemExit) on a line it cannot parse
        assert args.command == argv[0], argv
        if rest:                                           # as jointkl.cli.main: key=value words on train only
            assert args.command == "train" and not any(r.startswith("-") for r in rest), (argv, rest)
        for opt in [*(getattr(args, "options", None) or []), *rest]:
            assert re.fullmatch(r"[a-z_][a-z_0-9]*=\S+", opt), (argv, opt)


# ---------------------------------------------------------------------------------------------------- links


def slug(heading: str) -> str:
    """The anchor GitHub and MkDocs give a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"<[^>]+>", "", heading).replace("`", "").strip().lower()
    return re.sub(r"\s", "-", re.sub(r"[^\w\- ]", "", text))


@functools.cache
def generated_pages() -> dict[Path, str]:
    """The pages docs/hooks/model_pages.py adds at build time (docs/models/NAME.md), with their text."""
    hook = load_hook()
    return {ROOT / "docs" / hook.path(name): hook.page(name, cls) for name, cls in hook.models().items()}


def load_hook():
    spec = importlib.util.spec_from_file_location("model_pages", ROOT / "docs" / "hooks" / "model_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def anchors(page: Path, text: str | None = None) -> set[str]:
    text = page.read_text() if text is None else text
    prose = re.sub(r"^```.*?^```$", "", text, flags=re.S | re.M)
    return ({slug(h) for h in re.findall(r"^#{1,6} (.+?)\s*$", prose, flags=re.M)}
            | set(re.findall(r'id="([^"]+)"', text)))


def links(page: Path) -> list[str]:
    prose = re.sub(r"^```.*?^```$", "", page.read_text(), flags=re.S | re.M)
    prose = re.sub(r"`[^`\n]*`", "", prose)                # code spans hold no links
    return re.findall(r"\]\(([^)\s]+)\)", prose)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_a_file_and_anchor_that_exist(page):
    found, generated = links(page), generated_pages()
    if page in (README, INDEX):
        assert found, "the page links into the docs"
    for link in found:
        if re.match(r"[a-z]+:", link):                    # http:, https:, mailto:
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.is_file() or target in generated, f"{page.relative_to(ROOT)}: {link} -> no file {target}"
        if anchor and target.suffix == ".md":
            assert anchor in anchors(target, generated.get(target)), \
                f"{page.relative_to(ROOT)}: {link} -> no anchor #{anchor}"


def test_mkdocs_nav_lists_every_page_and_only_pages_that_exist():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    nav = [next(iter(item.values())) for item in config["nav"]]
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert sorted(nav) == pages
