"""Issue 22's study: Table 2 (Exp1–Exp5) and Table 3 (n = 8 / 16 / 32), several seeds each, through `run_study`.

    python experiments/ablation_study.py TRAIN_FLIST_OR_FOLDER EVAL_FOLDER OUT [--steps 2000] [--seeds 0 1 2]
                                         [--variants exp5_lga_decoder n=8 ...] [--eval-images N] [--threads 1]

Every run: the `small128` CPU recipe (colour path, region term, EMA, as the shipped models), `--steps` steps on one
thread (`--threads`; each row records the count), scored on EVAL_FOLDER (BSDS500 test here) with evaluation mask seed 0. Rows accumulate in OUT/runs.jsonl;
run it again to continue after a stop (finished runs are skipped, the current one resumes from its last.pt).
Table 3 on faces: CelebA train and the first 300 photos of CelebA test (`--eval-images 300`), its own OUT, with
`--variants exp4_ours n=8 n=32`. n = 16 is Exp4 itself (the `small128` default), so Table 3 trains only n = 8 and n = 32.
The default order runs the cheap variants first; the contextual-attention ones (Exp2, Exp3) cost ~3x a run.
Recipe A/Bs of issue 19 use the same protocol, paired with Exp4 by seed (give them their own OUT):
`exp4_upsample_resize` is Exp4 with the decoder's resize-convolution (`upsample='resize'`).
`exp4_width24` / `exp4_width32` are Exp4 at base width 24 / 32: for equal CPU time give them `--steps 1250` / `860`
(their step costs 1.6x / 2.3x Exp4's, measured on one thread of the AVX2 EPYC, fp32).
"""
import argparse, sys, torch
from ra_inpaint.ablation import run_study, TABLE2_VARIANTS, TABLE3_VARIANTS

RECIPE_VARIANTS = {'exp4_upsample_resize': dict(TABLE2_VARIANTS['exp4_ours'], upsample='resize'),  # issue 19's recipe A/Bs, on this protocol
                   'exp4_width24': dict(TABLE2_VARIANTS['exp4_ours'], base_ch=24), 'exp4_width32': dict(TABLE2_VARIANTS['exp4_ours'], base_ch=32)}
ORDER = ('exp1_basicnet', 'exp4_ours', 'exp5_lga_decoder', 'n=8', 'n=32', 'exp3_cam_decoder', 'exp2_cam_encoder')

def main(argv=None):
    ap = argparse.ArgumentParser(); ap.add_argument('train'); ap.add_argument('eval'); ap.add_argument('out')
    ap.add_argument('--steps', type=int, default=2000); ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    ap.add_argument('--variants', nargs='+', default=list(ORDER))
    ap.add_argument('--eval-images', type=int, default=None, help='score on the first N photos of EVAL only (CelebA test has 1,000)')
    ap.add_argument('--threads', type=int, default=1, help='torch threads (1: one run per core; 2 finishes a last run sooner when a core is free)')
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    known = TABLE2_VARIANTS | {k: v for k, v in TABLE3_VARIANTS.items() if k != 'n=16'} | RECIPE_VARIANTS
    for v in a.variants:  # one variant at a time over all seeds: a stop leaves whole variants behind it
        rows = run_study({v: known[v]}, a.train, a.eval, seeds=tuple(a.seeds), steps=a.steps, eval_images=a.eval_images,
                         out=a.out, progress=False)
        if {r['seed'] for r in rows if r['variant'] == v} < set(a.seeds):
            return 1  # stopped by a signal: do not start the next variant (run again to resume this one)

if __name__ == '__main__': sys.exit(main())
