"""Backend.train (speakerid.backends.base): retraining never orphans enrollments silently."""

from __future__ import annotations

import pytest

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.store import UBM_FILE, ModelStore
from tests.conftest import tiny_model_dir

_UBM = ["--components", "4", "--iterations", "2"]
_IVECTOR = ["--rank", "4", "--iterations", "1", "--augment", "0", "--ubm-components", "4"]


@pytest.fixture()
def enrolled(tmp_path):
    """A directory with a UBM and three speakers enrolled against it (backend gmm-ubm)."""
    models, corpus = tiny_model_dir(tmp_path)
    assert main(["enroll", "--manifest", str(corpus.enroll_csv), "--model-dir", str(models)]) == ExitStatus.OK
    return models, corpus


def test_retraining_the_ubm_under_enrollments_is_refused_then_forced(enrolled, capsys):
    """The failing sequence of the issue: train-ubm over enrolled speakers used to exit 0 and leave every
    enrollment unusable ("enrolled against another background model")."""
    models, corpus = enrolled
    store = ModelStore(models)
    speakers = sorted(store.speakers("gmm-ubm"))
    before = (models / UBM_FILE).read_bytes()
    capsys.readouterr()
    again = ["train-ubm", "--manifest", str(corpus.background_csv), "--model-dir", str(models), *_UBM,
             "--seed", "1"]
    assert main(again) == ExitStatus.USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{len(speakers)} speaker(s) are enrolled against its ubm.npz" in err
    assert all(s in err for s in speakers) and "--force" in err and "enroll them again" in err
    assert (models / UBM_FILE).read_bytes() == before and sorted(store.speakers("gmm-ubm")) == speakers

    assert main([*again, "--force"]) == ExitStatus.OK
    err = capsys.readouterr().err
    assert f"removed {len(speakers)} enrollment(s) of backend gmm-ubm" in err
    assert (models / UBM_FILE).read_bytes() != before and store.speakers("gmm-ubm") == []
    # the directory works again: enroll and verify
    assert main(["enroll", "--manifest", str(corpus.enroll_csv), "--model-dir", str(models)]) == ExitStatus.OK


def test_only_enrollments_tied_to_the_replaced_model_count(enrolled, capsys):
    """i-vector enrollments do not depend on ubm.npz (the i-vector system keeps its own copy), nor GMM-UBM ones on
    ivector.npz: training one model next to the other's speakers goes ahead without --force."""
    models, corpus = enrolled
    train_ivector = ["train-ivector", "--manifest", str(corpus.background_csv), "--model-dir", str(models),
                     *_IVECTOR]
    assert main(train_ivector) == ExitStatus.OK
    assert main(["enroll", "--manifest", str(corpus.enroll_csv), "--model-dir", str(models),
                 "--backend", "ivector"]) == ExitStatus.OK
    capsys.readouterr()
    assert main(train_ivector) == ExitStatus.USAGE                       # now its own speakers are enrolled
    assert "backend ivector" in capsys.readouterr().err
    assert main([*train_ivector, "--force"]) == ExitStatus.OK
    store = ModelStore(models)
    assert store.speakers("ivector") == [] and len(store.speakers("gmm-ubm")) == 3


def test_the_python_api_refuses_the_same_way(enrolled):
    from speakerid.backends.base import get_backend
    from speakerid.exceptions import ParameterError

    models, corpus = enrolled
    with pytest.raises(ParameterError, match="3 speaker\\(s\\) are enrolled against its ubm.npz"):
        get_backend("gmm-ubm").train(models, corpus.background_csv, n_components=4, max_iter=1)
    enrolled_before = sorted(ModelStore(models).speakers("gmm-ubm"))
    result = get_backend("gmm-ubm").train(models, corpus.background_csv, n_components=4, max_iter=1, force=True)
    assert result["removed_enrollments"] == {"gmm-ubm": enrolled_before}
