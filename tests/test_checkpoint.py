"The file formats (nbs/10a_checkpoint): one resolver for 'a path or a shipped model name', and inference without the training loop."
import subprocess, sys
import pytest, torch
from ra_inpaint.checkpoint import SHIPPED, shipped_path, resolve_weights, read_generator, save_checkpoint, load_checkpoint
from ra_inpaint.core import preset, config_to_dict


def test_resolve_weights_path_name_and_unknown(tmp_path):
    "A path is itself, a shipped name is the package's file, None is the scene model; anything else names itself and the shipped names."
    p = tmp_path/'w.pt'; p.write_bytes(b'x')
    assert resolve_weights(p) == p and resolve_weights(str(p)) == p
    assert resolve_weights('scene') == shipped_path('scene') == resolve_weights(None)
    assert shipped_path('scene').is_file()
    with pytest.raises(FileNotFoundError, match=r"cats is no file, nor a shipped model name \(scene, face\)"): resolve_weights('cats')
    with pytest.raises(FileNotFoundError, match='none.pt'): resolve_weights(tmp_path/'none.pt')
    assert set(SHIPPED) == {'scene', 'face'}


def test_shipped_name_missing_from_the_installation(tmp_path, monkeypatch):
    import ra_inpaint.checkpoint as ck
    monkeypatch.setattr(ck, 'shipped_path', lambda name='scene': tmp_path/'gone.pt')
    with pytest.raises(FileNotFoundError, match='shipped face model .*gone.pt is missing'): resolve_weights('face')


def test_a_generator_file_is_read_once(tmp_path, monkeypatch):
    "read_generator reads a training checkpoint from disk once (it used to read it again through load_checkpoint)."
    cfg = preset('demo', size=32, base_ch=8, disc_ch=8)
    p = save_checkpoint(dict(generator={'w': torch.ones(2)}, discriminator={}, opt_g={}, opt_d={}, step=5, config=config_to_dict(cfg)),
                        tmp_path/'last.pt')
    calls, real = [], torch.load
    monkeypatch.setattr(torch, 'load', lambda *a, **k: (calls.append(a[0]), real(*a, **k))[1])
    d = read_generator(p)
    assert len(calls) == 1 and d['cfg'] == cfg and d['meta'] == dict(step=5, ema=False)
    calls.clear(); assert load_checkpoint(p, cfg)['step'] == 5 and len(calls) == 1


@pytest.mark.parametrize('mod', ['ra_inpaint.infer', 'ra_inpaint.checkpoint'])
def test_inference_does_not_import_training(mod):
    "Filling a photo needs neither the training loop nor the losses' torchvision."
    code = (f"import {mod}, sys; bad = [m for m in ('ra_inpaint.train', 'ra_inpaint.losses', 'torchvision') if m in sys.modules]; "
            "assert not bad, bad")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
