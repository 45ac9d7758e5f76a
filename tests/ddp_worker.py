"One rank of the DDP test (run by torchrun from test_train.py): train 3 steps, save this rank's weights."
import sys, warnings
from pathlib import Path
import torch
warnings.simplefilter('ignore')
from ra_inpaint.core import preset
from ra_inpaint.data import InpaintDataset
from ra_inpaint.train import Trainer

img_dir, tmp = sys.argv[1], Path(sys.argv[2])
cfg = preset('demo', size=32, base_ch=8, disc_ch=8, disc_layers=2, batch_size=2, n_regions=4,
             log_every=2, ckpt_every=2, sample_every=2, num_workers=0)
tr = Trainer(cfg, InpaintDataset(img_dir, cfg.size, seed=0), tmp/'out', vgg=None, progress=False)
assert tr.env.world_size == 2 and torch.distributed.get_backend() == 'gloo'
initial = {k: v.clone() for k, v in tr.generator.state_dict().items()}
h = tr.fit(max_steps=3)
torch.save(dict(generator=tr.generator.state_dict(), discriminator=tr.D.state_dict(), initial=initial,
                first_batch=tr.sampler.batch(0), step=h['step']), tmp/f'rank{tr.env.rank}.pt')
tr.close()
