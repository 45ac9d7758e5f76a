"The painter (nbs/13b_painter): strokes replayed without a browser, Fill and Save; and the widget in a real browser."
import importlib.util, json, os, signal, subprocess, sys
from pathlib import Path

import numpy as np
import pytest, torch
from PIL import Image

from ra_inpaint import infer, checkpoint
from ra_inpaint.core import load_image, preset
from ra_inpaint.data import resize_image, demo_images
from ra_inpaint.generator import InpaintGenerator
from ra_inpaint.lga import mask_to
from ra_inpaint.painter import Painter, Stroke, painter, rasterize, display_size, to_image_xy, fill_figure, regions_figure
from ra_inpaint.visualize import region_maps

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def gen():
    torch.manual_seed(0)
    return InpaintGenerator(preset('demo', size=32, base_ch=8, disc_ch=8))  # random init, train mode


@pytest.fixture(scope='module')
def coffee():
    return load_image(demo_images()[2])  # 400x600, 8-bit


def rows(m, x):  # the hole rows of column x
    return m[0, :, x].nonzero().flatten().tolist()


def test_stroke_width_and_round_caps():
    m = rasterize([Stroke([(20, 30), (80, 30)], 11)], (60, 100))
    assert rows(m, 50) == list(range(25, 36))                      # 11 px wide, centred
    assert m[0, 30].nonzero().flatten()[[0, -1]].tolist() == [15, 85]  # round caps: 5 px past each end
    assert m[0, 25, 20] == 1 and m[0, 25, 15] == 0                  # round, not square
    thin = rasterize([Stroke([(20, 30), (80, 30)], 1)], (60, 100))
    assert thin.sum() == 61 and rows(thin, 50) == [30]
    assert rasterize([Stroke([(3, 4)], 1)], (10, 10)).nonzero().tolist() == [[0, 4, 3]]  # a click: one pixel
    assert set(m.unique().tolist()) == {0., 1.} and m.shape == (1, 60, 100)


def test_strokes_replayed_in_display_coordinates():
    "A photo shown at half size: display strokes land on the image where they were drawn, brush scaled."
    p = Painter(None, torch.rand(3, 300, 1024), max_side=512)
    assert p.disp_hw == (150, 512)
    p.brush = 6
    p.press(100, 50); p.drag(150, 50); p.release(200, 50)
    m = p.mask
    assert rows(m, 300) == list(range(95, 107))                    # 12 px = 6 display px x 2, around y = 100.5
    xs = m[0, 100].nonzero().flatten()
    assert abs(xs[0].item() - (200.5 - 6)) <= 1 and abs(xs[-1].item() - (400.5 + 6)) <= 1
    assert torch.equal(m, rasterize([Stroke([(200.5, 100.5), (300.5, 100.5), (400.5, 100.5)], 12)], (300, 1024)))
    assert to_image_xy(511, 149, p.disp_hw, p.hw) == (1022.5, 298.5)
    assert display_size((4000, 3000)) == (512, 384) and display_size((64, 64)) == (256, 256)


def test_undo_clear_eraser():
    p = Painter(None, torch.rand(3, 300, 300))  # shown 1:1
    p.brush = 10
    p.press(20, 100); p.release(180, 100)
    one = p.mask.clone()
    p.erase = True; p.press(100, 80); p.release(100, 120)
    assert p.mask[0, 100, 96:105].sum() == 0 and p.mask[0, 100, 30] == 1   # the eraser cut the line
    assert p.mask.sum() < one.sum()
    p.undo(); assert torch.equal(p.mask, one)                              # undo: the last stroke only
    p.erase = False; p.press(50, 50); p.release()                          # a dot
    assert p.mask[0, 50, 50] == 1 and len(p.strokes) == 2
    p.clear(); assert p.mask.sum() == 0 and p.strokes == []
    p.undo(); assert p.strokes == []                                       # nothing left to undo: no error
    p.drag(10, 10); p.release(); assert p.strokes == []                   # a drag without a press draws nothing


def test_fill_keeps_known_pixels(gen, coffee):
    p = Painter(gen, coffee); p.brush = 25
    with pytest.raises(ValueError, match='no hole'): p.fill()
    p.press(100, 100); p.drag(250, 160); p.release(400, 120)
    bn = {k: v.clone() for k, v in gen.state_dict().items() if 'running' in k}
    out = p.fill()
    known = p.mask.expand_as(coffee) == 0
    assert out.shape == coffee.shape and torch.equal(out[known], coffee[known])
    assert (out[~known] != coffee[~known]).any()
    assert gen.training and all(torch.equal(gen.state_dict()[k], v) for k, v in bn.items())
    # the region maps are those of the whole photo as `resize` gives it to the model (aspect kept, padding cut off)
    sq, msq, (h, w) = infer.to_square(coffee, p.mask, 32)
    ref = region_maps(gen, sq, msq)
    for name in ref:
        a = ref[name][1]
        hh, ww = -(-h * a.shape[-2] // 32), -(-w * a.shape[-1] // 32)
        assert torch.allclose(p.maps[name][1], a[..., :hh, :ww], atol=1e-6)
    assert p.biharmonic.shape == (3, 341, 512)                             # computed at the size shown
    assert [len(f.axes) for f in (fill_figure(p), regions_figure(p))] == [3, 6]


def test_fill_is_infer_fill(gen, monkeypatch):
    "Fill goes through infer.fill (the path of `ra-inpaint fill`), not a copy of it."
    calls = []
    def fake(g, images, masks, size=None, strategy='auto'):
        calls.append((g, images[0].shape, masks[0].shape)); return [torch.zeros_like(images[0])]
    monkeypatch.setattr(infer, 'fill', fake)
    p = Painter(gen, torch.rand(3, 70, 90)); p.press(30, 30); p.release()
    assert p.fill().abs().sum() == 0 and calls == [(gen, (3, 70, 90), (1, 70, 90))]


def test_thin_stroke_on_large_photo(gen):
    "A 1-px stroke on a photo much larger than the model still makes a hole (mask_to max-pools)."
    x = torch.rand(3, 500, 700)
    p = Painter(gen, x); p.brush = 1
    p.press(10, 100); p.release(300, 100)
    out = p.fill()
    known = p.mask.expand_as(x) == 0
    assert torch.equal(out[known], x[known]) and (out[~known] != x[~known]).any()


def test_save_round_trip(gen, coffee, tmp_path):
    p = painter(gen, demo_images()[2], out=tmp_path)
    p.press(300, 200); p.drag(320, 260); p.release(330, 300)
    mp, rp = p.save()
    assert (mp.name, rp.name) == ('coffee_mask.png', 'coffee_filled.png')
    assert torch.equal(infer.read_mask(mp, p.hw)[0], p.mask)               # white = hole, read as the CLI reads it
    assert np.asarray(Image.open(mp)).max() == 255 and Image.open(mp).mode == 'L'
    back = load_image(rp); known = p.mask.expand_as(back) == 0
    assert torch.equal(back[known], coffee[known])
    assert not [f for f in tmp_path.iterdir() if f.name.endswith('.tmp')]  # atomic writes leave no temporaries
    p.press(10, 10); p.release()                                           # an edit after the fill ...
    assert p.result is None
    mp, rp = p.save(tmp_path/'again')                                      # ... is filled again before saving
    assert torch.equal(infer.read_mask(mp, p.hw)[0], p.mask) and p.mask[0, 11, 11] == 1


def test_inputs_and_generators(gen, tmp_path, monkeypatch):
    arr = (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)
    for im in (arr, Image.fromarray(arr), torch.from_numpy(arr).permute(2, 0, 1) / 255):
        p = painter(gen, im)
        assert p.hw == (40, 50) and p.name == 'painted' and torch.allclose(p.image, torch.from_numpy(arr).permute(2, 0, 1) / 255)
    with pytest.raises(FileNotFoundError, match='not found'): painter(tmp_path/'none.pt')
    monkeypatch.setattr(checkpoint, 'shipped_path', lambda name='scene': tmp_path/'scene_small64.pt')
    with pytest.raises(FileNotFoundError, match='shipped scene model'): painter()


def test_widget_without_front_end(gen, tmp_path):
    p = painter(gen, demo_images()[1], out=tmp_path)
    w = p.widget()
    assert w is p.widget() and type(w).__name__ == 'VBox'
    assert (p._canvas.width, p._canvas.height) == (451, 300)
    p._on_mouse('down', 50, 50); p._on_mouse('move', 100, 80); p._on_mouse('out', 150, 80)
    assert len(p.strokes) == 1 and p.strokes[0].points[-1] == (150, 80)
    p._on_mouse('move', 200, 200); assert len(p.strokes[0].points) == 3    # moves after the stroke ended: ignored
    p._ui['view'].value = 'regions'                                        # no fill yet: back to the fill view
    assert p._ui['view'].value == 'fill' and 'press Fill first' in p._ui['status'].value
    p._act('fill'); assert 'filled in' in p._ui['status'].value
    p._ui['view'].value = 'regions'; assert p._ui['figure'].value[:4] == b'\x89PNG'
    p._act('save', str(tmp_path)); assert (tmp_path/'chelsea_mask.png').is_file()
    p.clear()
    with pytest.raises(ValueError): p._act('fill')
    assert p._ui['status'].value.startswith('fill: ValueError: no hole')


def _browser_check():
    spec = importlib.util.spec_from_file_location('browser_check', ROOT/'tools'/'browser_check.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


@pytest.mark.browser
def test_browser(tmp_path):
    "JupyterLab + headless Chromium: a mouse stroke, Fill, regions, Save; skipped without Chromium/driver/selenium."
    why = _browser_check().missing()
    if why: pytest.skip(why)
    shot = tmp_path/'painter.png'
    # its own process group: if the check overruns, JupyterLab, the driver and the browser go down with it
    proc = subprocess.Popen([sys.executable, str(ROOT/'tools'/'browser_check.py'), '--screenshot', str(shot),
                             '--timeout', '400'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try: out, err = proc.communicate(timeout=460)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL); out, err = proc.communicate()
        pytest.fail(f"browser check did not finish in 460 s\n{err[-3000:]}")
    summary = json.loads(out.strip().splitlines()[-1])
    assert proc.returncode == 0 and summary['ok'], f"{summary}\n{err[-4000:]}"
    assert summary['bbox_error_display_px'] <= 3
    assert 0 < shot.stat().st_size < 300_000 and Image.open(shot).width > 400
