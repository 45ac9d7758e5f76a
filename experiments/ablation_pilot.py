"""Issue 22's pilot: Exp1 (BasicNet) and Exp4 (ours), 3 seeds each, to measure the seed-to-seed spread.

    python experiments/ablation_pilot.py TRAIN_FLIST_OR_FOLDER EVAL_FOLDER OUT [--steps 2000] [--seeds 0 1 2]

Every run: the `small128` CPU recipe (colour path, region term, EMA as the shipped models), `--steps` steps on one
thread, scored on EVAL_FOLDER (BSDS500 test here) with evaluation mask seed 0. Rows accumulate in OUT/runs.jsonl;
run it again to continue after a stop. Prints the summary with paired differences against Exp1.
"""
import argparse, json, torch
from ra_inpaint.ablation import run_study, study_summary, ordering_verdict, TABLE2_VARIANTS

def main(argv=None):
    ap = argparse.ArgumentParser(); ap.add_argument('train'); ap.add_argument('eval'); ap.add_argument('out')
    ap.add_argument('--steps', type=int, default=2000); ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    variants = {k: TABLE2_VARIANTS[k] for k in ('exp1_basicnet', 'exp4_ours')}
    rows = run_study(variants, a.train, a.eval, seeds=tuple(a.seeds), steps=a.steps, out=a.out, progress=False)
    s = study_summary(rows, ref='exp1_basicnet')
    for (v, m, b), c in s.items():
        if b == '10-50': print(v, m, b, json.dumps(c))
    print('Exp4 > Exp1 in PSNR:', ordering_verdict(s, 'exp4_ours', 'exp1_basicnet'))

if __name__ == '__main__': main()
