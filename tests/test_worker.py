"""Worker process start-up."""

from __future__ import annotations

import gc

from herald import worker


def test_settle_heap_loads_the_features_then_freezes_the_start_up_heap() -> None:
    gc.unfreeze()
    try:
        worker.settle_heap()
        assert gc.get_freeze_count() > 0
        assert worker._STEPS, "the feature modules registered their worker steps before the freeze"
    finally:
        gc.unfreeze()  # frozen objects are never collected: give this test process its heap back
