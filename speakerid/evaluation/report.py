"""Evaluate score files: metrics per system, ROC / DET / histogram figures, ``metrics.json`` and a one-file
HTML report.

A score file is a CSV (or a :class:`pandas.DataFrame`) with at least the columns ``score`` and ``target``
(1 = target trial, 0 = non-target trial), usually also ``speaker``, ``path`` and ``error``, read by
:func:`speakerid.data.trials.read_score_file`: a row whose score is *missing* (an empty cell; ``None``/NaN in a
DataFrame) is a trial that could not be scored: it is skipped and counted in ``n_skipped``, its ``error`` text
kept as an example; so is a row with a non-empty ``error`` (as :mod:`speakerid.scoring.batch` writes for trials it
could not score, whatever their score cell holds). A literal ``nan`` or ``inf`` score in a row without an error
is an error, and so is a trial (speaker, path) listed twice or as both a target and a non-target. The figures of
each system are :func:`speakerid.evaluation.metrics.summary`.

``act_dcf`` and ``cllr`` treat the scores as calibrated natural-log likelihood ratios: ``act_dcf`` is the cost
at the Bayes threshold ``log((1 - p_target) / p_target)`` (4.595 at ``p_target=0.01``). Raw GMM-UBM scores are
not calibrated, so for them only EER, minDCF and minCllr are meaningful.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html
import json
import math
import re
from pathlib import Path

import numpy as np

from speakerid._utils.files import atomic_write
from speakerid._utils.jsontext import json_safe
from speakerid._utils.lazy import lazy_import
from speakerid._version import __version__
from speakerid.data.trials import read_score_file
from speakerid.evaluation import metrics
from speakerid.evaluation.operating_points import dcf_table
from speakerid.evaluation.plots import figure_bytes, plot_det, plot_roc, plot_score_histograms
from speakerid.exceptions import ManifestError, ParameterError

pd = lazy_import("pandas")

__all__ = ["evaluate", "ACT_DCF_NOTE"]

ACT_DCF_NOTE = ("actDCF and Cllr treat the scores as calibrated natural-log likelihood ratios; actDCF is the "
                "cost at the Bayes threshold log((1 - p_target) / p_target)")


def _system_names(sources, names) -> list:
    if names is not None:
        names = [str(n) for n in names]
        if len(names) != len(sources):
            raise ParameterError(f"got {len(names)} name(s) for {len(sources)} score file(s); give one per file")
    else:
        names = [Path(s).stem if not isinstance(s, pd.DataFrame) else f"system{i + 1}"
                 for i, s in enumerate(sources)]
        stems = list(names)
        for i, n in enumerate(stems):  # two files called scores.csv: name them by their folders too
            if stems.count(n) > 1 and not isinstance(sources[i], pd.DataFrame):
                names[i] = f"{Path(sources[i]).parent.name}/{n}"
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ParameterError(f"system names must differ; repeated: {', '.join(duplicates)} (give names=...)")
    if any(not n.strip() for n in names):
        raise ParameterError("system names must not be empty")
    return names


def _slug(name: str, taken: set) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "system"
    base, k = slug, 2
    while slug in taken:
        slug, k = f"{base}_{k}", k + 1
    taken.add(slug)
    return slug


def _source_info(source) -> dict:
    if isinstance(source, pd.DataFrame):
        return {"file": None, "rows": len(source)}
    path = Path(source)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"file": str(path.resolve()), "bytes": path.stat().st_size, "sha256": digest}


def evaluate(score_files, out_dir=None, p_target=0.01, names=None, *, dpi: int = 100, score_format=None,
             key=None) -> dict:
    """Evaluate one or more systems' score files and (with ``out_dir``) write a report folder.

    Writes, atomically, into ``out_dir``: ``roc.png`` and ``det.png`` (one curve per system),
    ``hist_<name>.png`` (one per system), ``metrics.json`` and ``report.html`` (self-contained: the figures are
    inlined as base64 ``data:`` URIs). Without ``out_dir`` only the metrics are computed.

    Parameters
    ----------
    score_files : str, os.PathLike, pandas.DataFrame, or a list of them
        Score CSVs / DataFrames with columns ``score`` and ``target`` (see the module docstring), or score files
        in the Kaldi, VoxCeleb (SpeechBrain's too) or NIST formats (:mod:`speakerid.data.score_formats`).
    out_dir : str or os.PathLike, optional
        Report folder (created if needed). The files named above are replaced; other files are left alone
        (e.g. the ``hist_*.png`` of systems no longer evaluated). ``None``: metrics only.
    p_target : float or sequence of float
        Target prior(s) of minDCF and actDCF (normalised, C_miss = C_fa = 1); the first is the report's main one,
        and every system gets ``operating_points`` (:func:`speakerid.evaluation.operating_points.dcf_table`) at
        all of them.
    score_format, key
        Format of score files that are not speakerid CSVs (default: detected from the first line), and the trial
        list giving their labels when they hold none (:func:`speakerid.data.score_formats.read_score_table`).
    names : list of str, optional
        One name per system; default the file names without ``.csv`` (``system1``, ... for DataFrames).
    dpi : int
        Resolution of the PNG figures.

    Returns
    -------
    dict
        What ``metrics.json`` holds: ``speakerid_version``, ``created`` (UTC, ISO 8601), ``p_target``,
        ``note`` (how actDCF / Cllr read the scores), ``files`` (report file names) and ``systems``: per system
        ``name``, ``source``, ``input``, ``n_trials``, ``n_skipped``, ``skipped_errors``, ``eer_percent`` and
        the :func:`~speakerid.evaluation.metrics.summary` of its scores read as LLRs (``n_target``,
        ``n_nontarget``, ``eer`` as a fraction, ``eer_threshold``, ``min_dcf``, ``min_dcf_threshold``,
        ``act_dcf``, ``act_dcf_threshold``, ``far``, ``frr``, ``cllr``, ``min_cllr``, ``p_target``); plus
        ``out_dir`` (absolute). Infinite thresholds are written as the string ``"inf"``.

    Raises
    ------
    ManifestError
        A score file is unreadable, lacks the ``score`` / ``target`` columns, or lists a trial twice or as both
        a target and a non-target (the message names it and its lines).
    ParameterError
        A score file has NaN or infinite scores or only one class of trials, or the names are wrong (the message
        names the file).
    """
    sources = list(score_files) if isinstance(score_files, (list, tuple)) else [score_files]
    if not sources:
        raise ParameterError("no score files to evaluate")
    names = _system_names(sources, names)
    p_targets = [float(p) for p in np.atleast_1d(p_target)]
    for p in p_targets:
        metrics.bayes_threshold(p)  # validates every p_target before any file is read
    p_target = p_targets[0]
    out_dir = None if out_dir is None else Path(out_dir)
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise ParameterError(f"{out_dir}: the report folder exists and is not a folder")

    systems, data = [], []
    for name, source in zip(names, sources):
        where = name if isinstance(source, pd.DataFrame) else str(source)
        scores = read_score_file(_as_score_csv(source, score_format, key), name=where, all_columns=False)
        try:
            values = metrics.summary(scores.scores, scores.labels, p_target, llr=True)
            values["operating_points"] = dcf_table(scores.scores, scores.labels, p_targets)
        except ParameterError as exc:
            raise ParameterError(f"{where}: {exc}") from None
        source_info = _source_info(source)
        systems.append({"name": name, "source": source_info["file"] or "<DataFrame>", "input": source_info,
                        "n_trials": len(scores.usable), **values, "eer_percent": 100.0 * values["eer"],
                        "n_skipped": scores.n_skipped, "skipped_errors": scores.errors})
        data.append((name, scores.scores, scores.labels))

    result = {
        "speakerid_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "p_target": p_target, "p_targets": p_targets, "c_miss": 1.0, "c_fa": 1.0, "note": ACT_DCF_NOTE,
        "files": None, "systems": systems,
    }
    if out_dir is None:
        return {**result, "out_dir": None}
    taken = set()
    figures = {"roc.png": plot_roc(data), "det.png": plot_det(data)}
    hist_files = {}
    for name, scores, labels in data:
        hist_files[name] = f"hist_{_slug(name, taken)}.png"
        figures[hist_files[name]] = plot_score_histograms(scores, labels, name=name)
    images = {}
    for file_name, fig in figures.items():
        images[file_name] = figure_bytes(fig, "png", dpi=dpi)
        with atomic_write(out_dir / file_name, "wb") as fh:
            fh.write(images[file_name])

    result["files"] = {"metrics": "metrics.json", "report": "report.html", "roc": "roc.png", "det": "det.png",
                       "hist": hist_files}
    with atomic_write(out_dir / "metrics.json", "w") as fh:
        json.dump(json_safe(result), fh, indent=2, allow_nan=False)
        fh.write("\n")
    with atomic_write(out_dir / "report.html", "w") as fh:
        fh.write(_html(result, images))
    return {**result, "out_dir": str(out_dir.resolve())}


def _as_score_csv(source, score_format, key):
    """``source`` as the one score-file reader takes it: speakerid CSVs and frames as they are; Kaldi, VoxCeleb
    and NIST files as a ``speaker,path,target,score`` frame (labels from ``key`` when the file has none)."""
    if isinstance(source, pd.DataFrame):
        return source
    from speakerid.data import score_formats

    if score_format in (None, "csv") and key is None:
        try:
            with open(source, encoding="utf-8-sig") as fh:
                if score_formats.detect_score_format(fh.readline()) in (None, "csv"):
                    return source   # a CSV (or unreadable): the reader names what is wrong
        except (OSError, UnicodeDecodeError):
            return source
    table = score_formats.read_score_table(source, score_format, key=key)
    if "target" not in table.columns:
        raise ManifestError("the score file holds no labels; give the trial list as the key (evaluate --key)",
                            source)
    return table.rename(columns={"enroll": "speaker", "test": "path"})


def _fmt(value, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) and math.isfinite(value) else str(value)


def _img(images: dict, file_name: str, alt: str) -> str:
    data = base64.b64encode(images[file_name]).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _html(result: dict, images: dict) -> str:
    esc = html.escape
    rows, inputs, hists = [], [], []
    for s in result["systems"]:
        rows.append(
            f"<tr><td>{esc(s['name'])}</td><td>{s['n_target']}</td><td>{s['n_nontarget']}</td>"
            f"<td>{s['n_skipped']}</td><td>{_fmt(s['eer_percent'], '.2f')}</td>"
            f"<td>{_fmt(s['eer_threshold'], '.4g')}</td><td>{_fmt(s['min_dcf'], '.4f')}</td>"
            f"<td>{_fmt(s['min_dcf_threshold'], '.4g')}</td><td>{_fmt(s['act_dcf'], '.4f')}</td>"
            f"<td>{_fmt(s['cllr'], '.4f')}</td><td>{_fmt(s['min_cllr'], '.4f')}</td></tr>")
        info = s["input"]
        detail = (f"{esc(info['file'])} ({info['bytes']} bytes, sha256 {info['sha256'][:16]}…)" if info["file"]
                  else f"in-memory DataFrame ({info['rows']} rows)")
        skipped = ""
        if s["n_skipped"]:
            examples = "; ".join(esc(e) for e in s["skipped_errors"]) or "no error text"
            skipped = f" — {s['n_skipped']} row(s) without a score skipped ({examples})"
        inputs.append(f"<li><b>{esc(s['name'])}</b>: {detail}{skipped}</li>")
        hists.append(_img(images, result["files"]["hist"][s["name"]], f"score histogram of {s['name']}"))
    p = result["p_target"]
    points = "\n".join(f"<tr><td>{esc(s['name'])}</td><td>{o['p_target']:g}</td><td>{_fmt(o['min_dcf'], '.4f')}</td>"
                       f"<td>{_fmt(o['act_dcf'], '.4f')}</td></tr>" for s in result["systems"]
                       for o in s.get("operating_points", []))
    rows_html, hists_html, inputs_html = "\n".join(rows), "\n".join(hists), "\n".join(inputs)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>speakerid evaluation report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #bbb; padding: 0.3em 0.7em; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
th {{ background: #eee; }}
img {{ max-width: 48%; margin: 0.5em 1% 0.5em 0; vertical-align: top; }}
.note {{ color: #555; font-size: 0.9em; }}
</style></head><body>
<h1>Speaker verification evaluation</h1>
<p>speakerid {esc(result['speakerid_version'])}, {esc(result['created'])}; P<sub>target</sub> = {p:g},
C<sub>miss</sub> = C<sub>fa</sub> = 1.</p>
<table>
<tr><th>system</th><th>target trials</th><th>non-target trials</th><th>skipped</th><th>EER %</th>
<th>EER threshold</th><th>minDCF</th><th>minDCF threshold</th><th>actDCF</th><th>Cllr</th><th>minCllr</th></tr>
{rows_html}
</table>
<p class="note">EER: where miss and false-alarm rates meet (interpolated DET curve). minDCF: normalised detection
cost at the best threshold. {esc(result['note'])} (here {metrics.bayes_threshold(p):.4g}); for uncalibrated
scores (e.g. raw GMM-UBM log-likelihood ratios) only EER, minDCF and minCllr are meaningful.</p>
<h2>Operating points</h2>
<table><tr><th>system</th><th>P<sub>target</sub></th><th>minDCF</th><th>actDCF</th></tr>
{points}
</table>
<p class="note">Normalised DCF (NIST SRE): (C<sub>miss</sub> P<sub>target</sub> P<sub>miss</sub> + C<sub>fa</sub>
(1 − P<sub>target</sub>) P<sub>fa</sub>) / min(C<sub>miss</sub> P<sub>target</sub>, C<sub>fa</sub>
(1 − P<sub>target</sub>)), C<sub>miss</sub> = C<sub>fa</sub> = 1; actDCF at the Bayes threshold of each prior. A DET
curve is drawn on probit axes and needs both error rates above 0: a system without errors draws none, and its
legend entry says so.</p>
<h2>Curves</h2>
{_img(images, 'det.png', 'DET curves')}
{_img(images, 'roc.png', 'ROC curves')}
<h2>Score distributions</h2>
{hists_html}
<h2>Inputs</h2>
<ul>
{inputs_html}
</ul>
</body></html>
"""
