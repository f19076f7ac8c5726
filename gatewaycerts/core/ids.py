"""Resource ids: 32 hex characters like APIG's, time-ordered (UUIDv7 layout) so that "newest first"
is stable even for records created within the same second."""

from __future__ import annotations

import os
import threading
import time

_lock = threading.Lock()
_last = [0, 0]  # last millisecond, last 74-bit random/counter value


def new_id() -> str:
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last[0]:
            ms = _last[0]
            rand = _last[1] + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 6  # 74 bits, leaves room to count up
        _last[0], _last[1] = ms, rand
    rand &= (1 << 74) - 1
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 62) << 64 | 0b10 << 62 | (rand & ((1 << 62) - 1))
    return f"{value:032x}"
