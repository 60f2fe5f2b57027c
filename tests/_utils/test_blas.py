"""speakerid._utils.blas: the one-BLAS-thread cap nests, is shared by threads, and restores the setting."""

import subprocess
import sys

import numpy as np
from threadpoolctl import threadpool_limits

from speakerid.features import FeatureConfig, extract

_NESTING = """
import threading
import numpy as np
from threadpoolctl import threadpool_info
from speakerid._utils.blas import one_blas_thread

def blas_threads():
    return sorted({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})

before = blas_threads()
inside, release = threading.Event(), threading.Event()

def hold():
    with one_blas_thread():
        inside.set()
        release.wait(5)

worker = threading.Thread(target=hold)
worker.start()
inside.wait(5)
seen = [blas_threads()]
with one_blas_thread():
    seen.append(blas_threads())
seen.append(blas_threads())
release.set()
worker.join()
print(seen, blas_threads() == before)
"""


def test_cap_nests_across_threads_and_restores_the_setting():
    """In a fresh process (OpenBLAS ignores a thread's setting once the main thread has set one explicitly, as
    earlier tests here do): a thread's cap is process-wide, nests, and the last one out restores the setting."""
    out = subprocess.run([sys.executable, "-c", _NESTING], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[[1], [1], [1]] True"


def test_features_do_not_depend_on_the_callers_blas_threads():
    rng = np.random.default_rng(0)
    signal = (0.1 * rng.standard_normal(16000 * 3)).astype(np.float32)
    config = FeatureConfig(vad="none")
    with threadpool_limits(limits=2, user_api="blas"):
        two = extract(signal, config)
    with threadpool_limits(limits=1, user_api="blas"):
        one = extract(signal, config)
    np.testing.assert_array_equal(two, one)


def test_gmm_training_and_scoring_do_not_depend_on_the_callers_blas_threads():
    """The chunked GMM passes (EM statistics, frame log-likelihoods) on one thread in this process."""
    from speakerid.models.gmm import DiagGMM

    frames = np.random.default_rng(1).standard_normal((20000, 60)).astype(np.float32)
    results = []
    for threads in (2, 1):
        with threadpool_limits(limits=threads, user_api="blas"):
            gmm = DiagGMM(n_components=64, max_iter=2, random_state=0, n_jobs=1).fit(frames)
            results.append((gmm.means_, gmm.score_samples(frames)))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
