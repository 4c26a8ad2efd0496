"""Two-domain sets for domain adaptation (the `ada` model): labelled source rows and unlabelled target rows.

A domain set's train split holds the source rows with their labels and the target rows with label -1,
interleaved by a fixed permutation (seed 0) so that any prefix (``train_fraction``) and any batch mixes
the two; its test split holds target-domain test images with their true labels (target accuracy), and
``meta["source_test"]`` / ``meta["source_test_labels"]`` the source-domain test images.

==============  =====  ===============================================  ===============================
name            kind   train                                            test
==============  =====  ===============================================  ===============================
mnist5k-digits  image  5,437 (1, 28, 28): 4,000 source + 1,437 target   360 target, labels 0-9
mnist5k-mnistm  image  8,000 (1, 28, 28): 4,000 source + 4,000 target   1,000 target, labels 0-9
==============  =====  ===============================================  ===============================

mnist5k-digits
    Source: mnist5k's 4,000 training digits. Target: scikit-learn's 8x8 digits (another set of writers,
    scanned at 8x8), resized bilinearly to 20x20 and zero-padded by 4 pixels to 28x28, the layout of MNIST
    (digits in a 20x20 box, centred): the 1,437 `digits` training images, labels hidden. Test: the 360
    `digits` test images resized the same way, with their labels.
mnist5k-mnistm
    Source: mnist5k's 4,000 training digits. Target: the same 4,000 digits blended over 28x28 patches of
    natural photos, ``|patch - digit|`` per pixel, the construction of MNIST-M (Ganin et al. 2016, Sec.
    5.2.2) in grey levels with scikit-learn's two bundled sample photos (china.jpg, flower.jpg; grey =
    channel mean / 255) in place of BSDS500. Patch positions and photo choice come from
    ``torch.Generator().manual_seed(0)`` for train and ``manual_seed(1)`` for test. Test: mnist5k's
    1,000 test digits blended the same way.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from jointkl.data.base import Dataset, load, register
from jointkl.errors import JointKLError


def _photos() -> list[torch.Tensor]:
    try:
        from sklearn.datasets import load_sample_images
        images = load_sample_images().images
    except Exception as e:   # Pillow missing or the bundled files unreadable
        raise JointKLError(f"mnist5k-mnistm needs scikit-learn's sample photos ({type(e).__name__}: {e}); "
                           "pip install scikit-learn pillow") from None
    return [torch.tensor(im, dtype=torch.float32).mean(-1) / 255.0 for im in images]     # (H, W) in [0, 1]


def blend_with_photos(x: torch.Tensor, seed: int) -> torch.Tensor:
    """MNIST-M style: |patch - x| with a random 28x28 (x's size) patch of a photo per image. (N, 1, H, W)"""
    photos, g = _photos(), torch.Generator().manual_seed(seed)
    n, (h, w) = x.shape[0], x.shape[-2:]
    which = torch.randint(len(photos), (n,), generator=g)
    patches = torch.empty(n, 1, h, w)
    for i in range(n):
        p = photos[int(which[i])]
        r = int(torch.randint(p.shape[0] - h + 1, (), generator=g))
        c = int(torch.randint(p.shape[1] - w + 1, (), generator=g))
        patches[i, 0] = p[r:r + h, c:c + w]
    return (patches - x).abs()


def mnist_layout(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, h, w) images -> (N, 1, 28, 28): resized to 20x20 and padded by 4, as MNIST digits sit."""
    return F.pad(F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False).clamp(0, 1), (4, 4, 4, 4))


def two_domains(name: str, source: Dataset, target_train: torch.Tensor, target_test: torch.Tensor,
                target_test_labels: torch.Tensor) -> Dataset:
    """Source rows (labelled) and target rows (label -1), interleaved by a fixed permutation."""
    x = torch.cat([source.train, target_train])
    y = torch.cat([source.train_labels, torch.full((target_train.shape[0],), -1, dtype=torch.long)])
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
    return Dataset(name=name, train=x[perm].contiguous(), test=target_test, kind="image",
                   train_labels=y[perm].contiguous(), test_labels=target_test_labels.clone(),
                   meta={"source_test": source.test, "source_test_labels": source.test_labels})


@register("mnist5k-digits", "domain adaptation: mnist5k digits (labelled source) -> sklearn's 8x8 digits in "
                            "MNIST's layout (unlabelled target); test = 360 target digits")
def mnist5k_digits() -> Dataset:
    src, tgt = load("mnist5k"), load("digits")
    return two_domains("mnist5k-digits", src, mnist_layout(tgt.train), mnist_layout(tgt.test), tgt.test_labels)


@register("mnist5k-mnistm", "domain adaptation: mnist5k digits (labelled source) -> the same digits blended "
                            "over photo patches (unlabelled target, MNIST-M style); test = 1,000 target digits")
def mnist5k_mnistm() -> Dataset:
    src = load("mnist5k")
    return two_domains("mnist5k-mnistm", src, blend_with_photos(src.train, 0), blend_with_photos(src.test, 1),
                       src.test_labels)
