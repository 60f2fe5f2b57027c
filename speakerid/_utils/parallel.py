"""Run batches of independent tasks in-process, on local joblib (loky) workers, or on a Dask cluster.

Batch scoring (:mod:`speakerid.scoring`) and model training (the map-reduce EM of :mod:`speakerid.models.sharded`)
share these runners; the module sits in ``_utils`` so that both layers can import it.

One :class:`TaskRunner` is opened per job and reused for every chunk of work, so worker processes (and whatever
they cache in module globals, e.g. loaded models) live for the whole job. :meth:`TaskRunner.submit` returns at
once with parallel workers, so the caller can prepare the next chunk (or write the last one) meanwhile. Results
always come back in the order of the tasks, whatever ran them.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import signal
import threading
import warnings

from speakerid._utils.blas import one_blas_thread
from speakerid._utils.validation import resolve_jobs
from speakerid.exceptions import ParameterError

__all__ = ["TaskRunner", "Pending", "resolve_jobs", "split_batches", "imap_ordered", "stop_workers"]


#: After Ctrl-C, local worker processes get this long (s) to finish their batches before they are killed.
INTERRUPT_GRACE_S = 3.0


def split_batches(items: list, n_batches: int) -> list[list]:
    """Split ``items`` into at most ``n_batches`` contiguous, non-empty batches of near-equal length.

    Examples
    --------
    >>> split_batches(list(range(5)), 2)
    [[0, 1, 2], [3, 4]]
    >>> split_batches([1], 4)
    [[1]]
    """
    n_batches = max(1, min(int(n_batches), len(items)))
    size, extra = divmod(len(items), n_batches)
    batches, start = [], 0
    for i in range(n_batches):
        stop = start + size + (i < extra)
        batches.append(items[start:stop])
        start = stop
    return [b for b in batches if b]


def _catching_warnings(func, shared, batch):
    """Worker side: ``(func(shared, batch), [(text, category), ...])``. A worker process prints its warnings in
    Python's raw two-line format; returned, they are raised again in the calling process, which prints them its
    own way (the command line: one ``speakerid: warning:`` line each).

    The batch runs under one BLAS thread: a worker is one of several processes sharing the cores, and BLAS's own
    threads there (OpenBLAS starts one per core, and they spin between products) only compete with the other
    workers: the front end's small products took twice the CPU time without the cap."""
    with warnings.catch_warnings(record=True) as caught, one_blas_thread():
        warnings.simplefilter("always")
        output = func(shared, batch)
    return output, [(str(w.message), w.category) for w in caught]


def _warn_again(results: list) -> list:
    """Caller side of :func:`_catching_warnings`: raise the workers' warnings here; the outputs."""
    for _, caught in results:
        for text, category in caught:
            warnings.warn(text, category, stacklevel=2)
    return [output for output, _ in results]


def _ignore_interrupts() -> None:
    """Initializer of the local worker processes: Ctrl-C is for the command (see :meth:`TaskRunner.close`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _sigint_held():
    """Start worker processes with Ctrl-C ignored: an ignored signal stays ignored through fork and exec, so a
    Ctrl-C that reaches the whole process group while a worker is still importing (before
    :func:`_ignore_interrupts` runs) cannot print that worker's KeyboardInterrupt traceback. Here Ctrl-C is blocked
    meanwhile (Linux keeps a blocked signal pending even while its action is "ignore"), so one pressed while the
    workers start is not lost: it arrives as KeyboardInterrupt when the block ends. Main thread only (where Python
    handles signals)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def stop_workers() -> None:
    """Stop this process's reusable worker processes now and wait for them to end.

    The local workers outlive each :class:`TaskRunner` (the next job reuses them) and would end on their own a
    second or two after this process; after Ctrl-C the command line stops them before it exits, so that no worker
    of an interrupted command is left running (loky's resource tracker ends as this process does, once it has
    removed the pool's semaphores and folders). Nothing is started when there are none."""
    import sys

    module = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(module, "_executor", None)
    if executor is not None:
        with contextlib.suppress(Exception):       # (a pool already broken by the interruption)
            # joblib's terminate(): the pool's temporary folders are removed and unregistered too
            stop = getattr(executor, "terminate", None)
            stop(kill_workers=True) if stop is not None else executor.shutdown(wait=True, kill_workers=True)


def _is_client(obj) -> bool:
    return type(obj).__name__ == "Client" and hasattr(obj, "map") and hasattr(obj, "gather")


class TaskRunner:
    """Map a function over batches of tasks: serially, with joblib, or on Dask.

    Parameters
    ----------
    n_jobs : int
        Local worker processes (joblib's reusable loky executor); 1 runs in this process. With ``scheduler="local"`` the
        number of Dask workers (1 means one per core).
    scheduler : str or dask.distributed.Client, optional
        ``"local"`` starts a :class:`dask.distributed.LocalCluster` (closed by :meth:`close`); ``"tcp://host:port"``
        connects to a running scheduler; a ``Client`` is used as it is (and left open). The workers need
        speakerid installed and must see the same files.
    batches_per_worker : int
        Batches made per worker and call of :meth:`submit` (more balance the load, fewer cost less overhead).
    threads : bool
        Local workers are threads of this process instead of processes: nothing to start or load twice, for
        work that is mostly NumPy/BLAS (which release the GIL). BLAS is then held at one thread per worker for
        the runner's lifetime.
    retries : int
        On Dask, times a failed task is run again (``Client.map(retries=...)``); a task whose worker died is
        rescheduled by the scheduler in any case (up to its ``allowed-failures``, 3 by default).

    Use it as a context manager::

        with TaskRunner(n_jobs=2) as runner:
            results = runner.map(func, shared, tasks)   # func(shared, batch) -> list, one item per task
            pending = runner.submit(func, shared, more_tasks)
            ...                                         # other work while the workers score
            results = pending.result()
    """

    def __init__(self, n_jobs: int = 1, scheduler: str | None = None, batches_per_worker: int = 4,
                 threads: bool = False, retries: int = 0):
        self.retries = int(retries)
        self.n_jobs = resolve_jobs(n_jobs)
        self.scheduler = scheduler
        self.batches_per_worker = int(batches_per_worker)
        self.threads = bool(threads) and scheduler is None
        self._blas_limit = None
        self._executor = None
        self._futures = []          # (worker processes) what was submitted, waited for or stopped by close()
        self._client = None
        self._cluster = None
        self._own_client = True
        #: How the work runs, for reports (e.g. "joblib (2 processes)"); filled in with the worker count by open().
        self.description = (f"{self.n_jobs} threads" if self.threads else f"joblib ({self.n_jobs} processes)"
                            ) if self.n_jobs > 1 else "serial"
        if scheduler is not None and not isinstance(scheduler, str) and not _is_client(scheduler):
            raise ParameterError(f"scheduler must be 'local', a 'tcp://host:port' address or a dask Client, "
                                 f"got {scheduler!r}")
        if isinstance(scheduler, str) and scheduler != "local" and "://" not in scheduler:
            raise ParameterError(f"scheduler must be 'local' or an address like tcp://host:8786, got {scheduler!r}")

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> TaskRunner:
        self.open()
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        self.close(interrupted=exc_type is not None and issubclass(exc_type, KeyboardInterrupt))

    def open(self) -> None:
        if self.scheduler is not None:
            self._open_dask()
        elif self.n_jobs > 1 and self.threads:
            from concurrent.futures import ThreadPoolExecutor

            self._blas_limit = contextlib.ExitStack()      # set here, in the thread that starts the workers: their
            self._blas_limit.enter_context(one_blas_thread())   # own caps then nest (see speakerid._utils.blas)
            self._executor = ThreadPoolExecutor(self.n_jobs, thread_name_prefix="speakerid-work")
        elif self.n_jobs > 1:
            from joblib.executor import get_memmapping_executor

            # the same (reusable) worker processes serve every submit(), and later jobs of this process too.
            # joblib's own executor class: loky keeps one reusable pool per process, and a plain loky pool left
            # there breaks the next joblib.Parallel (its executor must be joblib's subclass).
            # max_nbytes=None: large arrays are pickled, not written to /dev/shm files. Those memory maps belong
            # to the reused pool, outlive this runner, and at exit loky's resource tracker reported them as
            # "leaked file objects" on stderr.
            # The workers ignore Ctrl-C: this process gets it and stops them (close(interrupted=True)), instead of
            # each printing its own KeyboardInterrupt traceback.
            with _sigint_held():
                self._executor = get_memmapping_executor(self.n_jobs, timeout=300, max_nbytes=None,
                                                         initializer=_ignore_interrupts)

    def _open_dask(self) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise ParameterError("a Dask scheduler needs dask[distributed]: pip install 'speakerid[dask]'") from None
        if not isinstance(self.scheduler, str):
            self._client, self._own_client = self.scheduler, False
        elif self.scheduler == "local":
            workers = self.n_jobs if self.n_jobs > 1 else (os.cpu_count() or 1)
            self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                         dashboard_address=None, silence_logs=logging.WARNING)
            self._client = Client(self._cluster)
        else:
            try:
                self._client = Client(self.scheduler, timeout="30s")
            except (OSError, TimeoutError) as exc:
                raise ParameterError(f"cannot connect to the Dask scheduler {self.scheduler} ({exc})") from None
        where = ("LocalCluster" if self._cluster is not None else
                 self.scheduler if isinstance(self.scheduler, str) else self._client.scheduler.address)
        self.description = f"dask ({where}, {self.n_workers} workers)"

    def close(self, interrupted: bool = False) -> None:
        """Release the workers. Thread and Dask batches not started are cancelled. Worker processes finish the
        batches they were given (they may be writing into a folder the caller removes next); when ``interrupted``
        (Ctrl-C) for at most :data:`INTERRUPT_GRACE_S`, then the reusable pool is shut down and its processes
        killed."""
        if self.threads and self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        elif self._executor is not None and self._futures:
            # (not cancelled: cancelling a future of loky's pool races with its queue manager, which then dies;
            # killing the pool with batches queued makes that thread print a KeyError: so, a grace period first)
            _, running = concurrent.futures.wait(self._futures, timeout=INTERRUPT_GRACE_S if interrupted else None)
            if running:
                self._executor.shutdown(wait=True, kill_workers=True)
        self._futures = []
        if self._blas_limit is not None:
            self._blas_limit.close()
            self._blas_limit = None
        self._executor = None  # (processes) reusable: left running for the next job; idle workers exit after 300 s
        if self._client is not None and self._own_client:
            self._client.close()
        self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    # ------------------------------------------------------------------ work
    @property
    def n_workers(self) -> int:
        if self._client is not None:
            return max(1, sum(self._client.nthreads().values()))
        return self.n_jobs if self._executor is not None else 1

    def submit(self, func, shared, tasks: list) -> Pending:
        """Start ``func(shared, batch)`` over batches of ``tasks``; :meth:`Pending.result` gives the per-task
        results in order. Serially the work is done here, before returning.

        ``func`` must be a module-level function (it is pickled by reference) returning one item per task.
        """
        tasks = list(tasks)
        n_batches = self.n_workers * self.batches_per_worker if self.n_workers > 1 else 1
        batches = split_batches(tasks, n_batches) if tasks else []
        if self._client is not None and batches:
            futures = self._client.map(_catching_warnings, [func] * len(batches), [shared] * len(batches), batches,
                                       pure=False, retries=self.retries)
            return Pending(lambda: _warn_again(self._client.gather(futures)), futures)
        if self._executor is not None and batches and self.threads:
            # threads share this process's warning machinery (catch_warnings is not thread-safe): they warn directly
            futures = [self._executor.submit(func, shared, batch) for batch in batches]
            return Pending(lambda: [f.result() for f in futures], futures)
        if self._executor is not None and batches:
            with _sigint_held():      # (loky starts its workers on the first submit)
                futures = [self._executor.submit(_catching_warnings, func, shared, batch) for batch in batches]
            self._futures = [f for f in self._futures if not f.done()] + futures
            return Pending(lambda: _warn_again([f.result() for f in futures]))   # (not cancellable: see close)
        outputs = [func(shared, batch) for batch in batches]
        return Pending(lambda: outputs)

    def map(self, func, shared, tasks: list) -> list:
        """``func(shared, batch)`` over batches of ``tasks``; the concatenated per-task results, in order."""
        return self.submit(func, shared, tasks).result()


class Pending:
    """Results of :meth:`TaskRunner.submit`, possibly still being computed."""

    def __init__(self, gather, futures=()):
        self._gather = gather
        self._futures = list(futures)

    def result(self) -> list:
        """Wait for every batch; the per-task results in task order (a worker's exception is raised here)."""
        try:
            return [item for output in self._gather() for item in output]
        except BaseException:
            self.cancel()
            raise

    def cancel(self) -> None:
        """Cancel the batches not started yet (after an error elsewhere); local worker processes' batches are
        left to :meth:`TaskRunner.close`."""
        for future in self._futures:
            future.cancel()


def imap_ordered(runner, func, shared, tasks: list, window: int | None = None):
    """The per-task results of ``func(shared, batch)`` over ``tasks``, yielded one by one in task order.

    Tasks go to ``runner`` (an opened :class:`TaskRunner`; ``None``: computed here, one task at a time) in windows
    of ``window`` tasks (default ``4 x workers``); the next window is submitted before the current one is
    yielded, so workers stay busy while the caller consumes, and at most two windows of results exist at once.
    """
    tasks = list(tasks)
    if runner is None:
        for task in tasks:
            yield from func(shared, [task])
        return
    window = window or max(1, runner.n_workers) * 4
    waves = [tasks[i:i + window] for i in range(0, len(tasks), window)]
    pending = runner.submit(func, shared, waves[0]) if waves else None
    following = None
    try:
        for i in range(len(waves)):
            following = runner.submit(func, shared, waves[i + 1]) if i + 1 < len(waves) else None
            yield from pending.result()
            pending, following = following, None
    finally:
        for left in (pending, following):
            if left is not None:
                left.cancel()
