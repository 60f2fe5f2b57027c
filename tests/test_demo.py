"""The demo pipeline (what `make demo` runs), on a tiny corpus."""

from __future__ import annotations

import json

from speakerid.demo import run_demo


def test_demo_runs_end_to_end(tmp_path):
    lines = []
    result = run_demo(tmp_path / "synth", tmp_path / "models", tmp_path / "report", n_speakers=4,
                      n_utterances=5, n_components=8, out=lines.append, shared=None)
    assert result["n_trials"] == result["corpus"].n_trials > 0
    assert result["true_claim"]["speaker"] != result["false_claim"]["speaker"]
    assert 0.0 <= result["eer"] <= 1.0
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert [s["name"] for s in metrics["systems"]] == ["gmm-ubm", "gmm-ubm+norm"]
    assert (tmp_path / "report" / "report.html").is_file() and (tmp_path / "report" / "det.png").is_file()
    assert any(line.startswith("[7/8]") for line in lines) and lines[-1].startswith("done in")
    assert result["fused"] is None and any(line.startswith("[8/8] default fused system skipped") for line in lines)
    # the shipped model's step: three synthetic speakers enrolled into the demo's own store, not the user's
    shipped = result["shipped"]
    assert shipped is not None and not shipped["real_speech"]
    assert [c["speaker"] for c in shipped["claims"]] == ["spk001", "spk002"]
    assert all(c["scale"] == "llr" and c["band"] == "wideband" for c in shipped["claims"])
    assert list((tmp_path / "store" / "models").iterdir())
    assert any(line.startswith("[2/8] the model shipped with speakerid") for line in lines)
    again = run_demo(tmp_path / "synth", tmp_path / "models", tmp_path / "report", n_speakers=4,
                     n_utterances=5, n_components=8, out=None, shared=None)
    assert again["corpus"].reused and again["eer"] == result["eer"]
