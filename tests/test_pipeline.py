import threading
import time

from aigi.pipeline import iter_batches


def test_batches_keep_input_order_and_return_failures_in_place():
    def load(x):
        time.sleep(0.001 * (7 - x % 7))  # finish out of order
        if x % 5 == 3:
            raise ValueError(f"bad {x}")
        return x * 10

    batches = list(iter_batches(list(range(23)), load, batch_size=4, workers=3))
    assert [len(b) for b in batches] == [4, 4, 4, 4, 4, 3]
    flat = [item for b in batches for item in b]
    assert [i for i, _ in flat] == list(range(23))
    for i, v in flat:
        if i % 5 == 3:
            assert isinstance(v, ValueError) and str(v) == f"bad {i}"
        else:
            assert v == i * 10


def test_decoding_runs_ahead_of_the_consumer():
    started = []
    lock = threading.Lock()

    def load(x):
        with lock:
            started.append(x)
        return x

    it = iter_batches(list(range(40)), load, batch_size=4, workers=2, prefetch_batches=2)
    next(it)
    time.sleep(0.05)
    with lock:
        assert len(started) >= 8  # at least the next batch was already being decoded
