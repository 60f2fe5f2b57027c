"""Real-world training: the default training commands run to completion on the shared background set, and
degenerate training data (constant signals, tones, repeated frames) is refused or reported, naming the files.

The first test needs ``../shared`` (skipped without it) and is slow: with the defaults ``train-ubm`` (256
components, one noisy copy) takes about half a minute on 2 cores and ``train-ivector`` (its own 32-component UBM,
rank 200, 1.5-s segments, 2 noisy copies: about 5,000 segments, 10 T-matrix iterations) a few minutes.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.store import IVECTOR_FILE, UBM_FILE, ModelStore


def _header(model_dir, name):
    return ModelStore(model_dir).load(name)[0]


@pytest.mark.slow
def test_default_training_commands_run_on_the_shared_background(shared_dir, tmp_path, capsys):
    background = str(shared_dir / "protocols" / "librispeech-background.csv")
    models = tmp_path / "m"
    assert main(["train-ubm", "--manifest", background, "--model-dir", str(models)]) == ExitStatus.OK
    numerics = _header(models, UBM_FILE)["numerics"]
    assert numerics["floored_components"] == []
    assert main(["train-ivector", "--manifest", background, "--model-dir", str(models), "--json"]) == ExitStatus.OK
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["rank"] == 200 and all(math.isfinite(v) for v in result["log_likelihood_history"])
    assert result["log_likelihood_history"][-1] > result["log_likelihood_history"][0]
    header = _header(models, IVECTOR_FILE)
    assert set(header["numerics"]) >= {"tv_empty_components", "tv_regularised", "plda_regularised"}
    for command in ("train-siamese", "train-mlp"):
        neural = tmp_path / command
        assert main([command, "--manifest", background, "--model-dir", str(neural)]) == ExitStatus.OK


def _write(path, signal, rate=16000):
    sf.write(str(path), signal, rate, subtype="PCM_16")
    return path


def _degenerate_family(tmp_path):
    """Constant signals at several levels and tones at several frequencies, 3 s each."""
    rate, t = 16000, np.arange(3 * 16000) / 16000
    files = {f"const_{level}.wav": np.full(len(t), level) for level in (0.1, 0.5)}
    files.update({f"tone_{freq}.wav": 0.5 * np.sin(2 * np.pi * freq * t) for freq in (440, 1000, 3000)})
    return {name: _write(tmp_path / name, signal, rate) for name, signal in files.items()}


@pytest.mark.parametrize("augment", ["0", "1"])
def test_train_ubm_on_constants_and_tones_is_refused_naming_the_files(tmp_path, capsys, augment):
    files = _degenerate_family(tmp_path)
    manifest = tmp_path / "degenerate.csv"
    manifest.write_text("speaker,path\n" + "".join(f"s{i},{name}\n" for i, name in enumerate(files)))
    status = main(["train-ubm", "--manifest", str(manifest), "--model-dir", str(tmp_path / "m"),
                   "--components", "16", "--augment", augment])
    err = capsys.readouterr().err
    assert status != ExitStatus.OK, err
    assert any(name in err for name in files), err                # the refusal names the offending files
    assert not (tmp_path / "m" / UBM_FILE).exists()


def test_one_constant_file_among_speech_is_named_in_a_warning_or_refused(tmp_path, capsys, synth_corpus):
    import pandas as pd

    background = pd.read_csv(synth_corpus.background_csv)
    rows = [(s, str((synth_corpus.background_csv.parent / p).resolve())) for s, p in
            zip(background["speaker"], background["path"])]
    constant = _write(tmp_path / "dead_microphone.wav", np.full(3 * 16000, 0.3))
    rows.append(("broken", str(constant)))
    manifest = tmp_path / "background.csv"
    pd.DataFrame(rows, columns=["speaker", "path"]).to_csv(manifest, index=False)
    status = main(["train-ubm", "--manifest", str(manifest), "--model-dir", str(tmp_path / "m"),
                   "--components", "8", "--iterations", "3", "--augment", "0"])
    err = capsys.readouterr().err
    # refused at file level (no speech) or at model level (repeated frames): either way the file is named
    assert "dead_microphone.wav" in err, err
    if status == ExitStatus.OK:
        assert "warning" in err
