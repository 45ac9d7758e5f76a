"""Issue 22's report, written from the committed rows: docs/ablation/results.md (tables and verdicts) and study.png (the figure).

    python experiments/ablation_report.py [docs/ablation]        (Table 3 on faces: docs/ablation/faces)
"""
import os, sys
from pathlib import Path
from ra_inpaint.ablation import read_runs, study_report, plot_runs

def main(folder='docs/ablation'):
    d = Path(folder); rows = read_runs(d/'runs.jsonl')
    proto = os.path.relpath(Path(__file__).resolve().parents[1]/'docs'/'ablation.md', d.resolve())  # faces keep their rows a folder deeper
    (d/'results.md').write_text('# Ablation study: results\n\nWritten by `experiments/ablation_report.py` from `runs.jsonl`; '
                                f'protocol in [`{proto}`]({proto}). Each cell: mean over seeds [95 % t-interval]; '
                                'Δ: paired difference to Exp4 (same seed, same evaluation masks) [95 % t-interval].\n\n' + study_report(rows))
    plot_runs(rows).savefig(d/'study.png', dpi=100)
    print(f"wrote {d/'results.md'} and {d/'study.png'} from {len(rows)} rows")

if __name__ == '__main__': main(*sys.argv[1:])
