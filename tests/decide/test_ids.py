"""Decision ids: time-ordered, random after the time, never repeated by a forked process."""

from __future__ import annotations

import os
import re
import time

from loopwise.decide.ids import new_decision_id


def test_ids_are_the_time_then_random_bits_and_do_not_repeat() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_decision_id() for _ in range(3000)]  # several refills of the buffer
    after = time.time_ns() // 1_000_000
    assert all(re.fullmatch(r"d_[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    stamps = [int(i[2:14], 16) for i in ids]
    assert before <= stamps[0] and stamps == sorted(stamps) and stamps[-1] <= after
    assert len({i[14:] for i in ids}) == len(ids)  # the random part alone is unique too


def test_a_forked_child_does_not_hand_out_the_parents_next_ids() -> None:
    new_decision_id()  # the buffer holds ids not yet handed out
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's side
        os.write(write, "".join(new_decision_id() for _ in range(5)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    theirs = os.read(read, 4096).decode()
    os.close(read)
    ours = "".join(new_decision_id() for _ in range(5))
    assert len(theirs) == len(ours) and theirs != ours
