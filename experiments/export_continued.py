"""Ship a run that continued a shipped model (`ra-inpaint train ... --init-generator NAME`): its generator replaces
the weights file, and the file's meta grows by what the run added (steps, crops, hours, rates, machine).

    python experiments/export_continued.py RUN_DIR BASE DST --hardware "1 thread of a 2-core AMD EPYC (fp32)"

BASE is the weights the run started from (a path or a shipped name: scene, face); DST is usually the same file.
The steps, crops and wall hours come from the run's own checkpoint and log.csv; its rates from its config."""
import argparse
from pathlib import Path
from ra_inpaint.checkpoint import export_generator, load_checkpoint, resolve_weights, read_generator, config_mismatch
from ra_inpaint.logs import read_log


def rate(x: float) -> str:
    "A learning rate as the meta writes them: 1e-4, 2.5e-5."
    m, e = f'{x:e}'.split('e')
    return f'{float(m):g}e{int(e)}'


def continued_meta(run, base_meta: dict, base_cfg, hardware: str) -> dict:
    "The shipped meta of `base` extended by the run in folder `run` (its last.pt and log.csv)."
    run = Path(run)
    ck = load_checkpoint(run/'last.pt')
    cfg, n = ck['cfg'], ck['step']
    diff = config_mismatch(ck['config'], base_cfg)
    if diff: raise ValueError(f"{run} trained another model than the base weights (fields {', '.join(diff)} differ): not a continuation")
    t = read_log(run/'log.csv')['time']
    hours = float(t[-1]) / 3600 if len(t) else 0.0
    imgs = ck.get('counters', {}).get('images_seen', cfg.batch_size * n)
    meta = dict(base_meta)
    meta.update(step=base_meta['step'] + n, images_seen=base_meta['images_seen'] + imgs,
                wall_hours=round(base_meta.get('wall_hours', 0.0) + hours, 2),
                hardware=f"{base_meta.get('hardware', '?')}; then {n:,} steps on {hardware}",
                lr_schedule=f"{base_meta.get('lr_schedule', '?')}; then a warm start of the same kind at {rate(cfg.lr)} / {rate(cfg.d_lr)} for {n:,} steps")
    return meta


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('run'); p.add_argument('base'); p.add_argument('dst')
    p.add_argument('--hardware', required=True, help='where the continuation ran, as the meta should say it')
    a = p.parse_args(argv)
    base = read_generator(resolve_weights(a.base))  # read whole before dst (often the same file) is replaced
    meta = continued_meta(a.run, base['meta'], base['cfg'], a.hardware)
    keep = {k: meta[k] for k in meta if k not in ('ema', 'perceptual', 'torch')}  # export_generator writes these from the run itself
    export_generator(Path(a.run)/'last.pt', a.dst, **keep)
    print({k: meta[k] for k in ('step', 'images_seen', 'wall_hours')})


if __name__ == '__main__': main()
