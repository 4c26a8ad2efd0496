"""ALICE against truth: rec = 0 is ALI bitwise (both players' losses and gradients); the added term is the
hand-computed cycle error |x - G(E(x))|^2 (Dirac encoder and decoder) and enters the loss with weight rec."""
import pytest
import torch

from jointkl.errors import JointKLError
from jointkl.objectives.ali import ALI, ALIConfig
from jointkl.objectives.alice import ALICE, ALICEConfig

KW = dict(latent_dim=2, hidden=16, layers=1)


def both_players(cls, cfg, x):
    torch.manual_seed(0)
    m = cls(cfg, (2,), "continuous")
    out = []
    for p in m.players():
        m.begin(p.name)
        torch.manual_seed(1)
        loss, logs = m.loss(p.name, x)
        out.append((loss, logs, torch.autograd.grad(loss, p.params)))
    return m, out


@pytest.mark.parametrize("opts", [dict(), dict(loss="vi_full"), dict(encoder="dirac", decoder="gaussian")])
def test_rec_zero_is_ali_exactly(opts):
    x = torch.randn(16, 2)
    _, ali = both_players(ALI, ALIConfig(**KW, **opts), x)
    _, alice = both_players(ALICE, ALICEConfig(**KW, **opts, rec=0.0), x)
    for (la, _, ga), (lb, logs, gb) in zip(ali, alice):
        assert torch.equal(la, lb) and all(torch.equal(a, b) for a, b in zip(ga, gb))
    assert "rec" in alice[1][1]                                  # still logged at weight 0


def test_rec_is_the_hand_computed_cycle_error_with_its_weight():
    x = torch.randn(16, 2)
    opts = dict(**KW, encoder="dirac")
    m, (_, (l0, logs, _)) = both_players(ALICE, ALICEConfig(**opts, rec=0.0), x)
    with torch.no_grad():
        want = (x - m.p_x(m.q_z(x).mean).mean).pow(2).sum(1).mean()
    assert logs["rec"].item() == pytest.approx(want.item(), rel=1e-6)
    _, (_, (l2, _, _)) = both_players(ALICE, ALICEConfig(**opts, rec=2.5), x)
    assert l2.item() == pytest.approx((l0 + 2.5 * want).item(), rel=1e-6)


def test_negative_rec_is_refused():
    with pytest.raises(JointKLError, match=r"^option rec=-1.0 is out of range; it must be at least 0$"):
        ALICE(ALICEConfig(**KW, rec=-1.0), (2,), "continuous")
