"""Issue 22's report, written from the committed rows: docs/ablation/results.md (tables and verdicts) and study.png (the figure).

    python experiments/ablation_report.py [docs/ablation]        (Table 3 on faces: docs/ablation/faces --table3)

`--table3`: the rows are a study of Table 3 alone, so only its claims (n = 16 against n = 8 and n = 32) are checked.
"""
import argparse, os
from pathlib import Path
from ra_inpaint.ablation import read_runs, study_report, plot_runs, PAPER_CLAIMS, TABLE3_CLAIMS, IMPLIED_CLAIMS

def main(argv=None):
    ap = argparse.ArgumentParser(); ap.add_argument('folder', nargs='?', default='docs/ablation')
    ap.add_argument('--table3', action='store_true', help="check only Table 3's claims (a study of n = 8 / 16 / 32 alone)")
    a = ap.parse_args(argv)
    d = Path(a.folder); rows = read_runs(d/'runs.jsonl')
    claims, implied = (TABLE3_CLAIMS, ()) if a.table3 else (PAPER_CLAIMS, IMPLIED_CLAIMS)
    proto = os.path.relpath(Path(__file__).resolve().parents[1]/'docs'/'ablation.md', d.resolve())  # faces keep their rows a folder deeper
    (d/'results.md').write_text('# Ablation study: results\n\nWritten by `experiments/ablation_report.py` from `runs.jsonl`; '
                                f'protocol in [`{proto}`]({proto}). Each cell: mean over seeds [95 % t-interval]; '
                                'Δ: paired difference to Exp4 (same seed, same evaluation masks) [95 % t-interval].\n\n'
                                + study_report(rows, claims=claims, implied=implied))
    plot_runs(rows).savefig(d/'study.png', dpi=100)
    print(f"wrote {d/'results.md'} and {d/'study.png'} from {len(rows)} rows")

if __name__ == '__main__': main()
