"""Sample quality: Inception Score and Frechet distance on a classifier's outputs.

Pure functions first (features -> statistics -> metric, as torch-fidelity chains them):

    inception_score(probs)        IS  = exp E_x KL(p(y|x) || p(y)),  p(y) = E_x p(y|x)   (Salimans et al. 2016)
    frechet_distance(m1, C1, m2, C2)
                                  FID = |m1 - m2|^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2))      (Heusel et al. 2017)

tr (C1 C2)^(1/2) is the sum of square roots of the eigenvalues of C1^(1/2) C2 C1^(1/2), a symmetric PSD matrix,
so one `eigh` in float64 gives it without scipy.

Then the classifiers the numbers are computed with:

* `domain_classifier(data)`: a small CNN trained once per labelled image set on its train split, cached in
  `$JOINTKL_DATA/classifiers/` (safetensors + a JSON with its SHA-256, verified on load). Its softmax gives the
  "MNIST Inception Score" of Hu, DALI and ALICE (PAPER-NOTES: a pre-trained MNIST classifier, not Inception-v3);
  its penultimate layer gives the features of a domain FID. `classifier_scores(samples, data)` -> IS and FID
  against the test split.
* `inception_scores(samples, reference)`: Inception-v3 IS and FID through torch-fidelity (optional:
  `pip install torch-fidelity`) when its weights file is on disk; nothing is downloaded at run time.

FID depends on the sample counts (its estimate is biased upwards at small n): compare numbers computed with the
same n and the same reference.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jointkl.errors import JointKLError


# ---- pure functions ----------------------------------------------------------------------------------------

def inception_score(probs: Tensor) -> float:
    """exp(mean_i KL(p(y|x_i) || p(y))) of class probabilities (N, K), rows summing to 1; between 1 and K."""
    p = torch.as_tensor(probs, dtype=torch.float64)
    if p.dim() != 2 or p.shape[0] < 1:
        raise JointKLError(f"inception_score needs class probabilities of shape (N, K); got {tuple(p.shape)}")
    p_y = p.mean(0, keepdim=True)                                          # (1, K) marginal
    kl = (torch.xlogy(p, p) - torch.xlogy(p, p_y)).sum(1)                  # (N,) KL(p(y|x) || p(y)), 0 log 0 = 0
    return float(kl.mean().exp())


def feature_stats(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean (D,) and covariance (D, D) (1/(N-1) normalization, as the FID references) in float64."""
    f = torch.as_tensor(features, dtype=torch.float64).flatten(1)          # (N, D)
    if f.shape[0] < 2:
        raise JointKLError(f"feature statistics need at least 2 samples; got {f.shape[0]}")
    return f.mean(0), torch.cov(f.T).reshape(f.shape[1], f.shape[1])


def _sqrtm_psd(c: Tensor) -> Tensor:
    w, v = torch.linalg.eigh(c)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def frechet_distance(mu1: Tensor, cov1: Tensor, mu2: Tensor, cov2: Tensor) -> float:
    """The squared 2-Wasserstein (Frechet) distance between N(mu1, cov1) and N(mu2, cov2)."""
    mu1, cov1, mu2, cov2 = (torch.as_tensor(t, dtype=torch.float64) for t in (mu1, cov1, mu2, cov2))
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (*mu1.shape, *mu1.shape):
        raise JointKLError(f"frechet_distance needs means (D,) and covariances (D, D) of one D; got "
                           f"{tuple(mu1.shape)}, {tuple(cov1.shape)}, {tuple(mu2.shape)}, {tuple(cov2.shape)}")
    s1 = _sqrtm_psd((cov1 + cov1.T) / 2)
    cross = torch.linalg.eigvalsh(s1 @ cov2 @ s1).clamp_min(0).sqrt().sum()   # tr (C1 C2)^(1/2)
    fd = (mu1 - mu2).pow(2).sum() + cov1.trace() + cov2.trace() - 2 * cross
    return max(float(fd), 0.0)                                             # >= 0; rounding can dip below


def fid_from_features(f1: Tensor, f2: Tensor) -> float:
    """FID between two feature sets (N1, D) and (N2, D)."""
    return frechet_distance(*feature_stats(f1), *feature_stats(f2))


# ---- the domain classifier ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClassifierConfig:
    widths: tuple[int, int] = (16, 32)   # channels of the two conv blocks (conv 3x3, batch norm, ReLU, max-pool 2)
    features: int = 128                  # penultimate width: the FID features
    dropout: float = 0.25
    epochs: int = 30                     # mnist5k: 98.1 % test accuracy at 30 epochs (97.0 % at 6)
    batch_size: int = 64
    lr: float = 2e-3                     # one-cycle schedule peaking at lr
    shift: float = 0.07                  # augmentation: random translation, fraction of the side (2 px of 28)
    rotate: float = 10.0                 # augmentation: random rotation in degrees, and scale 1 +- 0.1
    binarized: float = 0.5               # fraction of each batch binarized (Bernoulli), so binary samples are in-domain
    seed: int = 0


class DomainClassifier(nn.Module):
    """A two-block CNN for (C, H, W) images; `features(x)` is the penultimate layer, `forward(x)` the logits."""

    def __init__(self, shape: tuple[int, int, int], classes: int, cfg: ClassifierConfig = ClassifierConfig()):
        super().__init__()
        (c, h, w), (w1, w2) = shape, cfg.widths
        def block(a: int, b: int) -> list[nn.Module]:
            return [nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(), nn.MaxPool2d(2)]
        self.body = nn.Sequential(*block(c, w1), *block(w1, w2), nn.Flatten(), nn.Dropout(cfg.dropout),
                                  nn.Linear(w2 * (h // 4) * (w // 4), cfg.features), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(cfg.features, classes))
        self.shape, self.classes = tuple(shape), classes

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)                                                # (B, features)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))                                     # (B, classes)

    @torch.no_grad()
    def outputs(self, x: Tensor, batch_size: int = 500) -> tuple[Tensor, Tensor]:
        """Logits (N, classes) and features (N, features) in eval mode, on the classifier's device."""
        was, dev = self.training, next(self.parameters()).device
        self.eval()
        feats = torch.cat([self.body(xb.to(dev)) for xb in torch.as_tensor(x).float().split(batch_size)])
        self.train(was)
        return self.head(feats), feats


def _augment(x: Tensor, cfg: ClassifierConfig, g: torch.Generator) -> Tensor:
    """Random rotation, scale and translation (one affine warp per image), then binarize a fraction of them."""
    b = x.shape[0]
    u = lambda *s: torch.rand(*s, generator=g) * 2 - 1                     # noqa: E731  uniform(-1, 1)
    a, s = u(b) * math.radians(cfg.rotate), 1 + 0.1 * u(b)
    theta = torch.stack([torch.stack([a.cos() * s, -a.sin() * s, 2 * cfg.shift * u(b)], 1),
                         torch.stack([a.sin() * s, a.cos() * s, 2 * cfg.shift * u(b)], 1)], 1)   # (B, 2, 3)
    x = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), align_corners=False)
    binary = torch.bernoulli(x.clamp(0, 1), generator=g)
    return torch.where(torch.rand(b, 1, 1, 1, generator=g) < cfg.binarized, binary, x)


def train_classifier(x: Tensor, y: Tensor, cfg: ClassifierConfig = ClassifierConfig()) -> DomainClassifier:
    """Train on images x (N, C, H, W) in [0, 1] with labels y (N,); deterministic given cfg.seed (on CPU)."""
    g = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng(), torch.enable_grad():                    # also when called under no_grad (eval)
        torch.manual_seed(cfg.seed)                                        # initialization and dropout
        net = DomainClassifier(tuple(x.shape[1:]), int(y.max()) + 1, cfg)
        opt = torch.optim.Adam(net.parameters(), cfg.lr)
        per_epoch = math.ceil(len(x) / cfg.batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.epochs * per_epoch)
        net.train()
        for _ in range(cfg.epochs):
            for idx in torch.randperm(len(x), generator=g).split(cfg.batch_size):
                loss = F.cross_entropy(net(_augment(x[idx], cfg, g)), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
    return net.eval()


def _sha256(path: Path) -> str:
    from jointkl.training.checkpoint import sha256 as sha
    return sha(path)


def _dataset(data):
    from jointkl.data import Dataset, load
    ds = data if isinstance(data, Dataset) else load(data)
    if ds.train_labels is None or ds.test_labels is None:
        raise JointKLError(f"a domain classifier needs a labelled data set; {ds.name} has no labels")
    if len(ds.shape) != 3 or min(ds.shape[1:]) < 4:
        raise JointKLError(f"a domain classifier needs images (C, H, W) of side >= 4; {ds.name} has shape {ds.shape}")
    return ds


def _cache_key(ds, cfg: ClassifierConfig) -> str:
    h = hashlib.sha256(json.dumps(asdict(cfg), sort_keys=True).encode())
    for t in (ds.train, ds.train_labels):                                  # the data it is trained on
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def domain_classifier(data, cfg: ClassifierConfig = ClassifierConfig(), device: str | torch.device = "cpu"
                      ) -> DomainClassifier:
    """The classifier of a labelled image set (a registered name or a `Dataset`), trained on its train split the
    first time and cached as `$JOINTKL_DATA/classifiers/<name>-<key>.safetensors` with `<...>.json` (config, SHA-256,
    test accuracy); the key hashes the config and the training data. A cached file failing its checksum is an
    error (delete it to retrain). Returned in eval mode; `.test_accuracy` holds its accuracy on the test split."""
    from safetensors.torch import load_file, save_file
    from jointkl.data.files import data_dir
    ds = _dataset(data)
    path = data_dir() / "classifiers" / f"{ds.name}-{_cache_key(ds, cfg)}.safetensors"
    meta_path = path.with_suffix(".json")
    net = DomainClassifier(ds.shape, int(ds.train_labels.max()) + 1, cfg)
    if path.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
            ok = _sha256(path) == meta["sha256"]
        except (OSError, ValueError, KeyError):
            ok = False
        if not ok:
            raise JointKLError(f"classifier cache {path} fails its SHA-256 check (or its .json is unreadable); "
                               "delete both files to retrain it")
        net.load_state_dict(load_file(path))
    else:
        net = train_classifier(ds.train, ds.train_labels, cfg)
        logits, _ = net.outputs(ds.test)
        meta = {"data": ds.name, "config": asdict(cfg),
                "test_accuracy": float((logits.argmax(1) == ds.test_labels).float().mean())}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")                # write, then rename: never half a file
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, tmp)
        meta["sha256"] = _sha256(tmp)
        tmp_meta = meta_path.with_name(f".{meta_path.name}.{os.getpid()}")
        tmp_meta.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, path)
        os.replace(tmp_meta, meta_path)
    net.test_accuracy, net.cache_key = meta["test_accuracy"], path.stem
    return net.eval().to(device)


DEFAULT = ClassifierConfig()                  # what `classifier_scores` and `jointkl eval --metrics is,fid` use
_REFERENCE: dict[tuple, tuple] = {}


def classifier_scores(samples: Tensor, data, cfg: ClassifierConfig | None = None, batch_size: int = 500) -> dict:
    """IS of samples (N, C, H, W) under the data's domain classifier, and FID of its features against the test
    split's; also the test split's own IS (`is_test`, the score of real held-out data). If every sample value is 0
    or 1, the reference is a fixed binarization of the test split (seed 0), so binary samples meet binary data."""
    from jointkl.data import binarize_fixed
    ds = _dataset(data)
    x = torch.as_tensor(samples, dtype=torch.float32).cpu()
    if tuple(x.shape[1:]) != ds.shape or len(x) < 2:
        raise JointKLError(f"samples have shape {tuple(x.shape)} but {ds.name} images are {ds.shape} (need N >= 2)")
    clf = domain_classifier(ds, cfg or DEFAULT)
    binary = bool(((x == 0) | (x == 1)).all())
    key = (clf.cache_key, binary)
    if key not in _REFERENCE:
        ref = binarize_fixed(ds.test) if binary else ds.test
        logits, feats = clf.outputs(ref, batch_size)
        _REFERENCE[key] = (inception_score(logits.softmax(1)), feature_stats(feats))
    is_test, ref_stats = _REFERENCE[key]
    logits, feats = clf.outputs(x, batch_size)
    return {"is": inception_score(logits.softmax(1)), "fid": frechet_distance(*feature_stats(feats), *ref_stats),
            "is_test": is_test}


# ---- Inception-v3 (optional) -------------------------------------------------------------------------------

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"   # torch-fidelity's port of the TF Inception graph
INCEPTION_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}"


def inception_weights() -> Path:
    """The weights file, from `$JOINTKL_DATA/inception/` or torch's hub cache; else a one-line error naming it."""
    from jointkl.data.files import data_dir
    places = [data_dir() / "inception", Path(torch.hub.get_dir()) / "checkpoints"]
    for folder in places:
        if (folder / INCEPTION_FILE).is_file():
            path = folder / INCEPTION_FILE
            if not _sha256(path).startswith("6726825d"):                   # torch hub's convention: the name holds it
                raise JointKLError(f"{path} fails its SHA-256 check; delete it and place a good copy from "
                                   f"{INCEPTION_URL}")
            return path
    raise JointKLError(f"Inception-v3 metrics need {INCEPTION_FILE} (from {INCEPTION_URL}); place it in "
                       f"{places[0]} (nothing is downloaded at run time)")


def inception_outputs(images: Tensor, batch_size: int = 100, device: str | torch.device = "cpu"
                      ) -> tuple[Tensor, Tensor]:
    """Inception-v3 pool features (N, 2048) and logits (N, 1008) of images (N, C, H, W) in [0, 1], through
    torch-fidelity (grey images are repeated to 3 channels; torch-fidelity resizes to 299 itself)."""
    weights = inception_weights()
    try:
        from torch_fidelity import FeatureExtractorInceptionV3
    except ImportError:
        raise JointKLError("Inception-v3 metrics need torch-fidelity: pip install torch-fidelity") from None
    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                      feature_extractor_weights_path=str(weights)).to(device).eval()
    x = torch.as_tensor(images, dtype=torch.float32)
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise JointKLError(f"Inception-v3 needs images (N, 1 or 3, H, W); got shape {tuple(x.shape)}")
    feats, logits = [], []
    with torch.no_grad():
        for xb in x.split(batch_size):
            u8 = (xb.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()   # (B, 3, H, W)
            f, lg = net(u8.to(device))
            feats.append(f.double().cpu())
            logits.append(lg.double().cpu())
    return torch.cat(feats), torch.cat(logits)


def inception_scores(samples: Tensor, reference: Tensor, batch_size: int = 100,
                     device: str | torch.device = "cpu") -> dict:
    """Inception-v3 IS of samples and FID of samples against reference images (both (N, C, H, W) in [0, 1])."""
    f, logits = inception_outputs(samples, batch_size, device)
    f_ref, _ = inception_outputs(reference, batch_size, device)
    return {"is_inception": inception_score(logits.softmax(1)), "fid_inception": fid_from_features(f, f_ref)}
