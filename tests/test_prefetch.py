"""The batch pipeline: the same batches in the same order, built one step ahead on a thread."""

import threading

import pytest
import torch

from s3rec.training.prefetch import prefetched, use_prefetch


def test_prefetched_yields_every_batch_in_order_and_builds_the_next_one_meanwhile():
    built = {k: threading.Event() for k in range(4)}

    def make(k):
        built[k].set()
        return k * 10

    seen = []
    for batch in prefetched(make, range(4)):
        k = batch // 10
        if k < 3:  # while the caller holds batch k, batch k + 1 is built (or being built) on the worker
            assert built[k + 1].wait(timeout=10)
        seen.append(batch)
    assert seen == [0, 10, 20, 30]
    assert list(prefetched(make, [])) == []


def test_prefetched_raises_the_builders_error_at_its_batch():
    def make(k):
        if k == 2:
            raise ValueError("bad sample 2")
        return k

    seen = []
    with pytest.raises(ValueError, match="bad sample 2"):
        for batch in prefetched(make, range(5)):
            seen.append(batch)
    assert seen == [0, 1]


def test_auto_prefetches_on_cuda_only_and_bad_settings_fail():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert use_prefetch(True, cpu) and not use_prefetch(False, cuda)
    assert use_prefetch("auto", cuda) and not use_prefetch("auto", cpu)
    for bad in ("sometimes", "on", 1):
        with pytest.raises(ValueError, match="prefetch must be auto, true or false"):
            use_prefetch(bad, cpu)
