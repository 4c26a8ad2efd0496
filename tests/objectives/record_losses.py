"""Record what every model computes today: the safety net for rewriting `jointkl/objectives`.

Run `.venv/bin/python tests/objectives/record_losses.py` to (re)write `fixtures/losses.json`;
`test_recorded_losses.py` recomputes every case with `compute_case` below (the one copy of the logic) and
compares every number to rel 1e-5. Rewrite the fixture only when a change of the numbers is intended.

A case is (model, option overrides, data set) plus two small extras: `labelled`, the labels of every
other row set to -1 (semi-supervised rows for svae), and `binarize`, one fixed Bernoulli draw of [0, 1]
data. Each case mimics `outer_steps` outer steps of `Trainer.train_step` on one fixed batch of the first
32 training rows: for every player in `model.players()` order, `model.begin(name)`, then `player.steps`
updates, each after `torch.manual_seed` of a seed fixed by (case, outer step, player, update).
First come the players' settings (order, lr, betas, steps, closed_form, full_batch, parameter count).

    closed-form player   logs of `model.update(name, x)`, then the norm of every state_dict entry
    gradient player      float(loss), every log, the L2 norm of the gradient of each group of the player's
                         parameters (grouped by top-level submodule name; no gradient counts as 0.0), then
                         plain SGD with lr 1e-2 on the player's parameters, so that the next update and
                         the next player see changed parameters, as in training

Models are built as `cls(cls.Config(**opts), ds.shape, ds.kind)` under `torch.manual_seed(0)`, in train
mode, in float32 (what training uses).
"""
from __future__ import annotations

import json
import math
import sys
import time
import typing
import zlib
from dataclasses import fields
from pathlib import Path

import torch

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "losses.json"
BATCH = 32
SGD_LR = 1e-2

# Small nets for every case: the whole file runs in seconds on one CPU thread.
_MLP = "hidden=16 layers=1 latent_dim=2"
_DCGAN = "arch=dcgan latent_dim=2"


def _case(model: str, options: str, data: str, *, labelled: bool = False, binarize: bool = False,
          outer_steps: int = 1) -> dict:
    opts = dict(kv.split("=", 1) for kv in options.split())
    words = [model, data] + [f"{k}={v}" for k, v in opts.items()]
    words += ["labelled=half"] * labelled + ["binarize"] * binarize + [f"outer={outer_steps}"] * (outer_steps != 1)
    return {"id": "/".join(words), "model": model, "options": opts, "data": data, "labelled": labelled,
            "binarize": binarize, "outer_steps": outer_steps}


CASES = [
    # vae (Su eq. 5-7; AA switch, Hu eq. 17)
    _case("vae", _MLP, "binary2x2"),
    _case("vae", _MLP, "grid25"),                                               # gaussian decoder
    _case("vae", f"{_MLP} layers=2", "digits", binarize=True),
    _case("vae", f"{_MLP} aa=true", "binary2x2"),
    _case("vae", f"{_MLP} aa=true aa_temperature=3 aa_weight=0.5 lr_d=0.002", "digits"),
    _case("vae", _DCGAN, "digits"),
    # gan (Su eq. 16, 20, 26; IWGAN, Hu eq. 16)
    _case("gan", _MLP, "grid25"),
    _case("gan", f"{_MLP} reg=5 g_steps=2", "grid25"),
    _case("gan", f"{_MLP} reg=5 g_steps=2", "grid25", outer_steps=2),
    _case("gan", f"{_MLP} iw=true", "grid25"),
    _case("gan", f"{_MLP} loss=minimax", "grid25"),
    _case("gan", f"{_MLP} layers=2 d_steps=2 g_batchnorm=true g_act=relu", "digits"),
    _case("gan", _DCGAN, "digits"),
    # ali (Su eqs. 38-43)
    _case("ali", f"{_MLP} loss=minimax", "grid25"),
    _case("ali", f"{_MLP} loss=nonsaturating", "grid25"),
    _case("ali", f"{_MLP} loss=vi", "grid25"),
    _case("ali", f"{_MLP} loss=vi_full", "grid25"),
    _case("ali", f"{_MLP} encoder=dirac decoder=gaussian", "grid25"),
    _case("ali", f"{_MLP} g_batchnorm=true", "digits"),
    _case("ali", _DCGAN, "digits"),
    # dali (Li et al. 2019)
    _case("dali", _MLP, "grid25"),
    _case("dali", f"{_MLP} variant=f", "grid25"),
    _case("dali", f"{_MLP} variant=l2", "grid25"),
    _case("dali", f"{_MLP} encoder_on_disc_features=true lam=0.3", "grid25"),
    _case("dali", f"{_MLP} separate_heads=true std_link=logvar layers=2", "digits"),
    _case("dali", f"{_DCGAN} encoder_on_disc_features=true", "digits"),
    # avb (Mescheder et al. 2017)
    _case("avb", f"{_MLP} noise_dim=4", "binary2x2"),
    _case("avb", f"{_MLP} noise_dim=4 adaptive_contrast=true ac_samples=4", "binary2x2"),
    _case("avb", f"{_MLP} noise_dim=4 adv_prior=false adv_hidden=8 adv_steps=1", "grid25"),
    _case("avb", f"{_DCGAN} noise_dim=4 adaptive_contrast=true ac_samples=3", "digits"),
    # aae (Su eqs. 27-34)
    _case("aae", _MLP, "grid25"),
    _case("aae", f"{_MLP} encoder=gaussian loss=minimax lam=0.5", "binary2x2"),
    _case("aae", f"{_MLP} decoder=dirac", "digits"),
    # infogan (Hu eq. 9)
    _case("infogan", f"{_MLP} n_categorical=3 n_continuous=1", "grid25"),
    _case("infogan", f"{_MLP} n_categorical=3 n_continuous=2 q_on_disc_features=true loss=minimax info=0.5",
          "digits"),
    _case("infogan", f"{_MLP} n_categorical=0 n_continuous=2", "grid25"),
    # wake_sleep (Hu eq. 14)
    _case("wake_sleep", "latent_dim=3", "binary2x2"),
    _case("wake_sleep", "latent_dim=3 stochastic_layers=2 layers=1 hidden=16", "digits", binarize=True),
    # cvae, cgan, svae: labelled models (Hu et al. 2018)
    _case("cvae", f"{_MLP} classes=4", "binary2x2"),
    _case("cvae", f"{_MLP} classes=25", "grid25"),
    _case("cvae", f"{_MLP} classes=4 aa=true", "binary2x2"),
    _case("cgan", f"{_MLP} classes=25", "grid25"),
    _case("cgan", f"{_MLP} classes=25 iw=true reg=5 g_steps=2", "grid25"),
    _case("svae", f"{_MLP} classes=4", "binary2x2"),
    _case("svae", f"{_MLP} classes=4", "binary2x2", labelled=True),
    _case("svae", f"{_MLP} classes=10 aa=true alpha=0.5", "digits", labelled=True, binarize=True),
    # em: one closed-form player (Su eq. 8-11); 2 outer steps reach the already-initialized path
    _case("em", "components=3", "grid25", outer_steps=2),
    # ada: labelled source rows, unlabelled (-1) target rows (jointkl.data.domains)
    _case("ada", "hidden=16 feat_dim=8", "mnist5k-digits"),
    _case("ada", "hidden=16 feat_dim=8 loss=minimax d_steps=2 adv=0.5", "mnist5k-digits"),
    _case("ada", "hidden=16 feat_dim=8 adv=0", "mnist5k-digits"),
    # issue 23: new declarations; the estimator options spectral_norm and unroll with other GAN options
    _case("beta_vae", f"{_MLP} beta=4", "binary2x2"),
    _case("beta_vae", f"{_MLP} beta=0.5", "grid25"),                           # gaussian decoder
    _case("sngan", _MLP, "grid25"),
    _case("sngan", f"{_MLP} iw=true reg=5 g_steps=2 d_steps=2", "grid25", outer_steps=2),
    _case("sngan", _DCGAN, "digits"),                                           # conv layers normalized
    _case("unrolled_gan", _MLP, "grid25"),
    _case("unrolled_gan", f"{_MLP} unroll=2 unroll_lr=0.1 loss=nonsaturating d_steps=2", "grid25", outer_steps=2),
    _case("alice", _MLP, "grid25"),
    _case("alice", f"{_MLP} encoder=dirac decoder=gaussian rec=0.5", "grid25"),
    _case("alice", f"{_MLP} g_batchnorm=true", "digits"),                       # squashed decoder
    _case("veegan", _MLP, "grid25"),
    _case("veegan", f"{_MLP} rec=0", "grid25"),
    _case("veegan", _DCGAN, "digits"),
    _case("vaegan", _MLP, "grid25"),
    _case("vaegan", f"{_MLP} gamma=0.5 loss=minimax g_batchnorm=true lr_d=0.002", "digits"),   # squashed decoder
    _case("vaegan", _DCGAN, "digits"),                                          # conv D's features
]


# --- building a case ---------------------------------------------------------------------------------
def _coerce(text: str, tp) -> object:
    """A `key=value` string to a Config field's type (bool, int, float, str, X | None, tuple[float, ...])."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if type(None) in typing.get_args(tp):                  # Optional[X]
        return None if text.lower() == "none" else _coerce(text, args[0])
    if typing.get_origin(tp) is tuple:
        return tuple(_coerce(t, a) for t, a in zip(text.split(","), args))
    if tp is bool:
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"not a bool: {text!r}")
        return text.lower() in ("true", "1")
    if tp in (int, float, str):
        return tp(text)
    if typing.get_origin(tp) is typing.Literal:            # a choice of strings
        return text
    raise TypeError(f"cannot coerce to {tp!r}")


def config(cls, options: dict[str, str]):
    hints = typing.get_type_hints(cls.Config)
    names = {f.name for f in fields(cls.Config)}
    unknown = set(options) - names
    if unknown:
        raise KeyError(f"{cls.name} has no options {sorted(unknown)}")
    return cls.Config(**{k: _coerce(v, hints[k]) for k, v in options.items()})


def batch(case: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The case's fixed batch: the first 32 training rows (and their labels for a labelled model)."""
    from jointkl import data
    ds = data.load(case["data"])
    x = ds.train[:BATCH].clone()
    if case["binarize"]:
        x = torch.bernoulli(x, generator=torch.Generator().manual_seed(0))
    y = None
    if case["labelled"] or _model_cls(case["model"]).labels:
        y = ds.train_labels[:BATCH].clone()
        if case["labelled"]:
            y[1::2] = -1                                   # every other row unlabelled
    return x, y


def _model_cls(name: str):
    from jointkl.objectives import MODELS
    return MODELS[name]


def _seed(case_id: str, outer: int, player: str, update: int) -> int:
    return zlib.crc32(f"{case_id}|{outer}|{player}|{update}".encode())


def _f(v) -> float:
    return float(v.detach()) if isinstance(v, torch.Tensor) else float(v)


def _norm(ts: list[torch.Tensor]) -> float:
    if not ts:
        return 0.0
    return float(torch.cat([t.detach().reshape(-1).double() for t in ts]).norm())


def compute_case(case: dict) -> list[dict]:
    """What the case computes today: one record per update (see the module docstring)."""
    from jointkl import data
    cls = _model_cls(case["model"])
    ds = data.load(case["data"])
    x, y = batch(case)
    torch.manual_seed(0)
    model = cls(config(cls, case["options"]), ds.shape, ds.kind)
    model.train()
    group = {id(p): n.split(".", 1)[0] for n, p in model.named_parameters()}
    records = [{"outer": -1, "player": p.name, "update": -1,          # the players' settings, in order
                "settings": {"order": i, "lr": p.lr, "beta1": p.betas[0], "beta2": p.betas[1], "steps": p.steps,
                             "closed_form": float(p.closed_form), "full_batch": float(p.full_batch),
                             "tensors": len(p.params), "elements": sum(t.numel() for t in p.params)}}
               for i, p in enumerate(model.players())]
    with torch.enable_grad():
        for outer in range(case["outer_steps"]):
            for player in model.players():
                model.begin(player.name)
                for update in range(player.steps):
                    torch.manual_seed(_seed(case["id"], outer, player.name, update))
                    rec = {"outer": outer, "player": player.name, "update": update}
                    if player.closed_form:
                        logs = model.update(player.name, x)
                        rec["logs"] = {k: _f(v) for k, v in logs.items()}
                        rec["state_norms"] = {k: _norm([v.float()]) for k, v in model.state_dict().items()}
                    else:
                        loss, logs = model.loss(player.name, x) if y is None else model.loss(player.name, x, y)
                        rec["loss"] = _f(loss)
                        rec["logs"] = {k: _f(v) for k, v in logs.items()}
                        grads = torch.autograd.grad(loss, player.params, allow_unused=True)
                        groups: dict[str, list[torch.Tensor]] = {}
                        for p, g in zip(player.params, grads):
                            groups.setdefault(group[id(p)], []).append(torch.zeros_like(p) if g is None else g)
                        rec["grad_norms"] = {k: _norm(v) for k, v in groups.items()}
                        with torch.no_grad():
                            for p, g in zip(player.params, grads):
                                if g is not None:
                                    p.add_(g, alpha=-SGD_LR)
                    records.append(rec)
    return records


def flatten(records: list[dict]) -> dict[str, float]:
    """{"outer/player/update/field[/key]": number} of a case's records, for comparison."""
    out = {}
    for r in records:
        where = f"{r['outer']}/{r['player']}/{r['update']}"
        for k, v in r.items():
            if isinstance(v, dict):
                out.update({f"{where}/{k}/{kk}": vv for kk, vv in v.items()})
            elif k == "loss":
                out[f"{where}/loss"] = v
    return out


def main() -> None:
    torch.set_num_threads(1)
    start, cases = time.perf_counter(), []
    for case in CASES:
        t = time.perf_counter()
        records = compute_case(case)
        bad = [k for k, v in flatten(records).items() if not math.isfinite(v)]
        if bad:
            raise SystemExit(f"{case['id']}: non-finite values {bad}")
        cases.append({**case, "records": records})
        print(f"{time.perf_counter() - t:6.2f} s  {case['id']}")
    ids = [c["id"] for c in cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    out = {"about": "recorded by tests/objectives/record_losses.py; checked by test_recorded_losses.py",
           "torch": torch.__version__, "python": sys.version.split()[0], "batch": BATCH, "sgd_lr": SGD_LR,
           "cases": cases}
    FIXTURE.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{len(cases)} cases in {time.perf_counter() - start:.1f} s -> {FIXTURE} "
          f"({FIXTURE.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
