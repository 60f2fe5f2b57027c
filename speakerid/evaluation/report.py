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

Every figure comes with a bootstrap confidence interval that resamples speakers (trials of one speaker are not
independent), see :mod:`speakerid.evaluation.bootstrap`; :func:`compare` tests whether two systems scored on the
same trials differ.
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
from speakerid.evaluation.bootstrap import (
    GROUP_COLUMNS,
    METHOD_REFERENCES,
    check_bootstrap,
    speaker_groups,
    with_intervals,
)
from speakerid.evaluation.operating_points import dcf_table
from speakerid.evaluation.plots import figure_bytes, plot_det, plot_roc, plot_score_histograms
from speakerid.exceptions import ManifestError, ParameterError

pd = lazy_import("pandas")

__all__ = ["evaluate", "ACT_DCF_NOTE", "GROUP_COLUMNS"]

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
             key=None, n_boot: int = 1000, confidence: float = 0.95, group_column: str | None = None,
             random_state=0) -> dict:
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
    n_boot : int
        Bootstrap replicates of each system's confidence intervals (:func:`~speakerid.evaluation.bootstrap.\
bootstrap_metrics`); 0 computes none.
    confidence : float
        Coverage of the intervals, in (0, 1).
    group_column : str, optional
        The score-file column whose values are resampled (the speakers). Default: the first of
        :data:`GROUP_COLUMNS` the file has; without one, or when it holds a single value, trials are resampled
        and ``intervals_note`` says so.
    random_state : None, int or numpy.random.Generator
        Seed of the resampling (the default makes reports reproducible).

    Returns
    -------
    dict
        What ``metrics.json`` holds: ``speakerid_version``, ``created`` (UTC, ISO 8601), ``p_target``,
        ``note`` (how actDCF / Cllr read the scores), ``files`` (report file names) and ``systems``: per system
        ``name``, ``source``, ``input``, ``n_trials``, ``n_skipped``, ``skipped_errors``, ``eer_percent`` and
        the :func:`~speakerid.evaluation.metrics.summary` of its scores read as LLRs (``n_target``,
        ``n_nontarget``, ``eer`` as a fraction, ``eer_threshold``, ``min_dcf``, ``min_dcf_threshold``,
        ``act_dcf``, ``act_dcf_threshold``, ``far``, ``frr``, ``cllr``, ``min_cllr``, ``p_target``), ``group_column``
        (``None`` when trials were resampled), ``n_speakers`` (distinct values of that column, or None),
        ``intervals`` (the :func:`~speakerid.evaluation.bootstrap.bootstrap_metrics` result at every ``p_target``,
        or ``None`` with ``n_boot=0``) and ``intervals_note`` (why trials were resampled, or None); plus
        ``out_dir`` (absolute) and ``intervals`` (how the intervals were made, one sentence).
        Infinite thresholds are written as the string ``"inf"``.

    Raises
    ------
    ManifestError
        A score file is unreadable, lacks the ``score`` / ``target`` columns, or lists a trial twice or as both
        a target and a non-target (the message names it and its lines).
    ParameterError
        A score file has NaN or infinite scores or only one class of trials, lacks ``group_column`` or has scored
        rows with an empty one, or the names, ``n_boot`` or ``confidence`` are wrong (the message names the file).
    """
    n_boot, confidence = check_bootstrap(n_boot, confidence, allow_zero=True)
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
        scores = _read_scores(source, where, score_format, key, group_column)
        groups, column, n_speakers, note = speaker_groups(scores.frame, scores.usable, group_column, where)
        try:
            values = metrics.summary(scores.scores, scores.labels, p_target, llr=True)
            values["operating_points"] = dcf_table(scores.scores, scores.labels, p_targets)
            intervals = None if not n_boot else with_intervals(
                scores.scores, scores.labels, groups, p_targets=p_targets, n_boot=n_boot, confidence=confidence,
                random_state=random_state, llr=True, known={k: values[k] for k in ("cllr", "min_cllr")})
        except ParameterError as exc:
            raise ParameterError(f"{where}: {exc}") from None
        source_info = _source_info(source)
        systems.append({"name": name, "source": source_info["file"] or "<DataFrame>", "input": source_info,
                        "n_trials": len(scores.usable), **values, "eer_percent": 100.0 * values["eer"],
                        "n_skipped": scores.n_skipped, "skipped_errors": scores.errors,
                        "group_column": None if groups is None else column, "n_speakers": n_speakers,
                        "intervals": intervals, "intervals_note": note})
        data.append((name, scores.scores, scores.labels))

    result = {
        "speakerid_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "p_target": p_target, "p_targets": p_targets, "c_miss": 1.0, "c_fa": 1.0, "note": ACT_DCF_NOTE,
        "intervals": _intervals_note(n_boot, confidence, [s["group_column"] is not None for s in systems]),
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


def _read_scores(source, where: str, score_format, key, group_column):
    wanted = [group_column] if group_column is not None else list(GROUP_COLUMNS)
    scores = read_score_file(_as_score_csv(source, score_format, key), name=where, all_columns=False,
                             columns=wanted)
    if group_column is not None and group_column not in scores.frame.columns:
        header = (list(source.columns) if isinstance(source, pd.DataFrame) else
                  [str(c).strip() for c in pd.read_csv(source, nrows=0, sep=None, engine="python").columns]
                  if score_format in (None, "csv") else list(scores.frame.columns))
        raise ParameterError(f"{where}: no column {group_column!r} to group the trials by (the file has "
                             f"{', '.join(map(str, header))})")
    return scores


def _intervals_note(n_boot: int, confidence: float, by_speaker=(True,)) -> str:
    """The report's sentence on its intervals; ``by_speaker``: per system, whether speakers (not trials) were
    resampled."""
    if not n_boot:
        return "no confidence intervals (n_boot = 0)"
    if not any(by_speaker):
        return (f"{100 * confidence:g} % percentile intervals from {n_boot} bootstrap resamples of the TRIALS, as if "
                f"independent (no speaker column: too narrow when a speaker has several trials; give --group-by); "
                f"references: {METHOD_REFERENCES}")
    some = "" if all(by_speaker) else " (of the trials for the systems whose line says so)"
    return (f"{100 * confidence:g} % percentile intervals from {n_boot} bootstrap resamples of the speakers{some}, "
            f"a speaker drawn k times counting all its trials k times (the subsets bootstrap); references: "
            f"{METHOD_REFERENCES}")


def _fmt(value, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) and math.isfinite(value) else str(value)


def _img(images: dict, file_name: str, alt: str) -> str:
    data = base64.b64encode(images[file_name]).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _ci(system: dict, name: str, value, spec: str, scale: float = 1.0) -> str:
    """``value [low, high]`` of one figure (just the value without intervals)."""
    interval = (system.get("intervals") or {}).get(name)
    if not interval:
        return _fmt(value, spec)
    return (f"{_fmt(value, spec)} <small>[{_fmt(scale * interval['low'], spec)}, "
            f"{_fmt(scale * interval['high'], spec)}]</small>")


def _html(result: dict, images: dict) -> str:
    esc = html.escape
    p = result["p_target"]
    rows, inputs, hists, methods = [], [], [], []
    for s in result["systems"]:
        speakers = s["n_speakers"] if s["n_speakers"] is not None else "—"
        rows.append(
            f"<tr><td>{esc(s['name'])}</td><td>{speakers}</td><td>{s['n_target']}</td><td>{s['n_nontarget']}</td>"
            f"<td>{s['n_skipped']}</td><td>{_ci(s, 'eer', s['eer_percent'], '.2f', 100.0)}</td>"
            f"<td>{_fmt(s['eer_threshold'], '.4g')}</td><td>{_ci(s, f'min_dcf@{p:g}', s['min_dcf'], '.4f')}</td>"
            f"<td>{_fmt(s['min_dcf_threshold'], '.4g')}</td><td>{_ci(s, f'act_dcf@{p:g}', s['act_dcf'], '.4f')}</td>"
            f"<td>{_ci(s, 'cllr', s['cllr'], '.4f')}</td><td>{_ci(s, 'min_cllr', s['min_cllr'], '.4f')}</td></tr>")
        info = s["input"]
        detail = (f"{esc(info['file'])} ({info['bytes']} bytes, sha256 {info['sha256'][:16]}…)" if info["file"]
                  else f"in-memory DataFrame ({info['rows']} rows)")
        skipped = ""
        if s["n_skipped"]:
            examples = "; ".join(esc(e) for e in s["skipped_errors"]) or "no error text"
            skipped = f" — {s['n_skipped']} row(s) without a score skipped ({examples})"
        inputs.append(f"<li><b>{esc(s['name'])}</b>: {detail}{skipped}</li>")
        hists.append(_img(images, result["files"]["hist"][s["name"]], f"score histogram of {s['name']}"))
        if s["intervals"]:
            note = f" ({esc(s['intervals_note'])})" if s["intervals_note"] else ""
            methods.append(f"<li><b>{esc(s['name'])}</b>: {s['n_speakers'] or 'no'} speakers"
                           f"{' (column ' + esc(s['group_column']) + ')' if s['group_column'] else ''}, "
                           f"{s['n_target']} target / {s['n_nontarget']} non-target trials; "
                           f"{esc(s['intervals']['method'])}{note}.</li>")
    points = []
    for s in result["systems"]:
        for o in s.get("operating_points", []):
            at = f"{o['p_target']:g}"
            points.append(f"<tr><td>{esc(s['name'])}</td><td>{at}</td><td>{_ci(s, 'min_dcf@' + at, o['min_dcf'], '.4f')}"
                          f"</td><td>{_ci(s, 'act_dcf@' + at, o['act_dcf'], '.4f')}</td></tr>")
    points = "\n".join(points)
    methods_html = "\n".join(methods)
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
C<sub>miss</sub> = C<sub>fa</sub> = 1. Each figure is followed by its [confidence interval].</p>
<table>
<tr><th>system</th><th>speakers</th><th>target trials</th><th>non-target trials</th><th>skipped</th><th>EER %</th>
<th>EER threshold</th><th>minDCF</th><th>minDCF threshold</th><th>actDCF</th><th>Cllr</th><th>minCllr</th></tr>
{rows_html}
</table>
<p class="note">EER: where miss and false-alarm rates meet (interpolated DET curve). minDCF: normalised detection
cost at the best threshold. {esc(result['note'])} (here {metrics.bayes_threshold(p):.4g}); for uncalibrated
scores (e.g. raw GMM-UBM log-likelihood ratios) only EER, minDCF and minCllr are meaningful.</p>
<p class="note">Intervals: {esc(result['intervals'])}. Trials of one speaker are not independent, so speakers,
not trials, are resampled.</p>
<ul class="note">
{methods_html}
</ul>
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
