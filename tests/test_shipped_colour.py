"The shipped models keep absolute colour: flat images come back flat, and a colour shift of the known pixels moves the fill by as much."
import numpy as np
import pytest
import torch
from skimage import data, transform

from ra_inpaint.infer import load_generator
from ra_inpaint.masks import free_form_mask


@pytest.fixture(scope='module', params=['scene', 'face'])
def G(request):
    torch.set_num_threads(1)
    return load_generator(name=request.param)


def _mask(S, seed, bucket='40-50'):
    return torch.from_numpy(free_form_mask(S, bucket, rng=seed))[None, None].float()


@pytest.mark.parametrize('colour', [(0, 0, 0), (255, 255, 255), (20, 30, 80), (128, 128, 128), (220, 30, 40)])
def test_flat_colours_come_back_flat(G, colour):
    "A constant image with a large hole (40-50 %, and a centred rectangle): mean absolute error inside the hole within 2 levels."
    S = G.cfg.size
    k = (torch.tensor(colour, dtype=torch.float32) / 255).view(1, 3, 1, 1).expand(1, 3, S, S).contiguous()
    rect = torch.zeros(1, 1, S, S); rect[..., S // 4:3 * S // 4, S // 5:4 * S // 5] = 1
    for m in (_mask(S, 0), _mask(S, 1), rect):
        with torch.no_grad(): out = G(k * (1 - m), m)
        err = ((out - k).abs() * 255)[m.expand_as(k) > 0].mean().item()
        assert err <= 2.0, (colour, err)


def _photos(S):
    ims = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    return [torch.from_numpy(transform.resize(im, (S, S), anti_aliasing=True).astype(np.float32)).permute(2, 0, 1) for im in ims]


def test_a_colour_shift_moves_the_fill_by_as_much(G):
    "Shift one channel of the known pixels by ±26 levels: the fill inside the hole moves by (1 ± 0.1)·Δ on average."
    S, gains = G.cfg.size, []
    for i, x in enumerate(_photos(S)):
        m = _mask(S, 10 + i, '20-30')
        for c in range(3):
            for d in (26 / 255, -26 / 255):
                shift = torch.zeros(1, 3, 1, 1); shift[0, c] = d
                with torch.no_grad():
                    a = G(x[None] * (1 - m), m)
                    b = G(((x[None] + shift).clamp(0, 1)) * (1 - m), m)
                ok = (m[0, 0] > 0) & (a[0, c] > .12) & (a[0, c] < .88)  # away from clipping
                gains.append(((b - a)[0, c][ok].mean() / d).item())
    assert abs(np.mean(gains) - 1) <= 0.1, np.round(gains, 2)
