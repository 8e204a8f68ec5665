"""The `s3rec compare` table as Markdown, CSV and LaTeX, in the layout of the paper's Table 2: metrics
as rows, models as columns (mean ± std over seeds), best in bold, second best underlined, then S3-Rec's
improvement over the best baseline, `*` on S3-Rec's cell where the paired t-test gives p < 0.01.
With several S3-Rec columns (`s3rec@recipe`), "S3-Rec" is the last of them (Comparison.ours).

Best and second best are decided on the means as printed (4 decimals), so equal-looking cells share a mark.
"""

from __future__ import annotations

import csv
import io
import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # compare imports this module
    from s3rec.compare import Comparison, MetricRow

DISPLAY = {"pop": "PopRec", "fm": "FM", "autoint": "AutoInt", "gru4rec": "GRU4Rec", "caser": "Caser",
           "sasrec": "SASRec", "bert4rec": "BERT4Rec", "hgn": "HGN", "gru4recf": "GRU4RecF", "sasrecf": "SASRecF",
           "fdsa": "FDSA", "s3rec": "S3-Rec"}
DIGITS = 4


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1) of the values over seeds; 0 for a single value."""
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def cell(mean: float, std: float, n_seeds: int, pm: str = "±") -> str:
    """A table cell: the mean, with ± the (sample) std when there are several seeds (one seed has none)."""
    return f"{mean:.{DIGITS}f} {pm} {std:.{DIGITS}f}" if n_seeds > 1 else f"{mean:.{DIGITS}f}"
OURS = "s3rec"


def model_of(column: str) -> str:
    """The model of a column: `s3rec@best` -> `s3rec`."""
    return column.partition("@")[0]


def display(column: str) -> str:
    """`sasrec` -> `SASRec`, `s3rec@best` -> `S3-Rec (best)`."""
    model, _, recipe = column.partition("@")
    return DISPLAY.get(model, model) + (f" ({recipe})" if recipe else "")


def marks(row: "MetricRow") -> dict[str, str]:
    """model -> "best" / "second" by the printed mean (ties share a mark), others absent."""
    shown = {m: round(v, DIGITS) for m, v in row.mean.items() if not math.isnan(v)}
    levels = sorted(set(shown.values()), reverse=True)
    out = {}
    for m, v in shown.items():
        if v == levels[0]:
            out[m] = "best"
        elif len(levels) > 1 and v == levels[1]:
            out[m] = "second"
    return out


def improvement_text(row: "MetricRow") -> str:
    """S3-Rec's improvement over the best baseline as a signed percentage."""
    return "–" if row.improvement is None else f"{round(100 * row.improvement, 2) + 0.0:+.2f}%"  # + 0.0: no "-0.00%"


def _protocols(table: "Comparison") -> list[str]:
    return list(dict.fromkeys(r.protocol for r in table.rows))


def _has_improv(table: "Comparison") -> bool:
    return table.ours is not None and any(model_of(m) != OURS for m in table.models)


def _seconds_text(table: "Comparison", model: str) -> str:
    mean, _ = table.seconds[model]
    text = "–" if math.isnan(mean) else f"{mean:.0f}"
    if model in table.pretrain_seconds:
        text += f" (+{table.pretrain_seconds[model]:.0f} pre-training)"
    return text


MD_SIGN = {"better": "\\*", "worse": "†", "": ""}  # the paper's star marks a significant improvement only
TEX_SIGN = {"better": "$^{*}$", "worse": "$^{\\dagger}$", "": ""}


def to_markdown(table: "Comparison") -> str:
    """comparison.md: one table per protocol, then the mean wall-clock per run."""
    seeds = ", ".join(map(str, table.seeds))
    lines = [f"# Model comparison on {table.dataset}", "",
             f"Test split, best validation epoch; mean ± std over seeds {seeds} (sample std). "
             "**Bold**: best, <u>underlined</u>: second best."]
    if table.missing_seeds():
        lines.append("Unfinished (a report of the runs finished so far): "
                     + ", ".join(f"{display(m)} {len(table.seeds) - k} of {len(table.seeds)} seeds"
                                 for m, k in table.missing_seeds().items()) + ".")
    if _has_improv(table):
        lines.append(f"Improv.: {display(table.ours)}'s relative improvement over the best baseline of the row "
                     f"(the columns of other models). \\*: {display(table.ours)} significantly better than "
                     f"that baseline, †: significantly worse (paired t-test over {table.n_users} users, each user's "
                     "value averaged over seeds, p < 0.01); t-test and Wilcoxon p-values in comparison.csv.")
    head = ["metric", *map(display, table.models)] + (["Improv."] if _has_improv(table) else [])
    for protocol in _protocols(table):
        lines += ["", f"## {protocol} ranking", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in (r for r in table.rows if r.protocol == protocol):
            mark = marks(row)
            cells = [row.metric]
            for m in table.models:
                text = cell(row.mean[m], row.std[m], _n_seeds(table, m))
                text = {"best": f"**{text}**", "second": f"<u>{text}</u>"}.get(mark.get(m), text)
                cells.append(text + (MD_SIGN[row.sign] if m == table.ours else ""))
            if _has_improv(table):
                cells.append(improvement_text(row))
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Mean wall-clock per run (s, the sum of metrics.json `seconds` stages): "
              + ", ".join(f"{display(m)} {_seconds_text(table, m)}" for m in table.models) + "."]
    return "\n".join(lines) + "\n"


def to_csv(table: "Comparison") -> str:
    """comparison.csv: one line per (protocol, metric) with every model's mean and std, the best
    baseline, S3-Rec's relative improvement and both p-values; then a line of wall-clock seconds."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["protocol", "metric", *[f"{m}_{s}" for m in table.models for s in ("mean", "std")],
                "best_baseline", "improvement", "p_ttest", "p_wilcoxon", "significant"])
    for row in table.rows:
        w.writerow([row.protocol, row.metric, *[_num(x) for m in table.models for x in (row.mean[m], row.std[m])],
                    row.best_baseline or "", _num(row.improvement), _num(row.p_ttest), _num(row.p_wilcoxon),
                    int(row.significant) if row.p_ttest is not None else ""])
    w.writerow(["", "seconds", *[_num(x) for m in table.models for x in table.seconds[m]], "", "", "", "", ""])
    w.writerow(["", "seeds", *[str(len(table.run_dirs.get(m, table.seeds))) if s == "mean" else ""
                               for m in table.models for s in ("mean", "std")], "", "", "", "", ""])
    if table.pretrain_seconds:
        w.writerow(["", "pretrain_seconds", *[_num(table.pretrain_seconds.get(m)) if s == "mean" else ""
                                              for m in table.models for s in ("mean", "std")], "", "", "", "", ""])
    return buf.getvalue()


def _num(x: float | None) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else repr(float(x))


def to_latex(table: "Comparison") -> str:
    """comparison.tex: a booktabs table per protocol (needs \\usepackage{booktabs})."""
    improv = _has_improv(table)
    cols = "l" + "c" * len(table.models) + ("r" if improv else "")
    head = ["Metric", *(_tex(display(m)) for m in table.models)] + (["Improv."] if improv else [])
    out = []
    for protocol in _protocols(table):
        out += ["\\begin{table}[t]", "\\centering",
                f"\\caption{{Test results on {_tex(table.dataset)} ({protocol} ranking), mean $\\pm$ std over "
                f"seeds {', '.join(map(str, table.seeds))}. Best in bold, second best underlined"
                + (". $^{*}$ / $^{\\dagger}$: significantly better / worse than the best baseline "
                   "(paired t-test, $p < 0.01$)." if improv else ".")
                + "".join(f" Unfinished: {_tex(display(m))} {len(table.seeds) - k} of {len(table.seeds)} seeds."
                          for m, k in table.missing_seeds().items()) + "}",
                f"\\begin{{tabular}}{{{cols}}}", "\\toprule", " & ".join(head) + " \\\\", "\\midrule"]
        for row in (r for r in table.rows if r.protocol == protocol):
            mark = marks(row)
            cells = [_tex(row.metric)]
            for m in table.models:
                text = cell(row.mean[m], row.std[m], _n_seeds(table, m), pm="$\\pm$")
                text = {"best": f"\\textbf{{{text}}}", "second": f"\\underline{{{text}}}"}.get(mark.get(m), text)
                cells.append(text + (TEX_SIGN[row.sign] if m == table.ours else ""))
            if improv:
                cells.append(_tex(improvement_text(row)).replace("–", "--"))
            out.append(" & ".join(cells) + " \\\\")
        out += ["\\midrule", " & ".join(["Time (s)", *(_tex(_seconds_text(table, m)) for m in table.models)]
                                        + ([""] if improv else [])) + " \\\\",
                "\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(out)


def _tex(text: str) -> str:
    for a, b in (("\\", "\\textbackslash{}"), ("&", "\\&"), ("%", "\\%"), ("_", "\\_"), ("#", "\\#"), ("$", "\\$")):
        text = text.replace(a, b)
    return text


def _n_seeds(table: "Comparison", model: str) -> int:
    return len(table.run_dirs.get(model, table.seeds))
