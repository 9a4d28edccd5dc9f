"""Undo and redo: snapshots of the draft taken before each edit."""

from __future__ import annotations

from designer import history
from designer.history import History


def draft(number: int) -> dict:
    return {"nodes": [{"id": f"n_{number}"}], "edges": []}


def test_a_new_history_has_nothing_to_undo():
    assert History().undo(draft(0)) is None


def test_a_new_history_has_nothing_to_redo():
    assert History().redo(draft(0)) is None


def test_undo_with_nothing_recorded_leaves_the_history_empty():
    kept = History()
    kept.undo(draft(0))
    assert (kept.past, kept.future) == ([], [])


def test_undo_returns_the_draft_recorded_before_the_edit():
    kept = History()
    kept.record(draft(0))
    assert kept.undo(draft(1)) == draft(0)


def test_undo_goes_back_one_edit_at_a_time():
    kept = History()
    kept.record(draft(0))
    kept.record(draft(1))
    assert kept.undo(draft(2)) == draft(1)
    assert kept.undo(draft(1)) == draft(0)
    assert kept.undo(draft(0)) is None


def test_redo_returns_the_draft_that_was_undone():
    kept = History()
    kept.record(draft(0))
    undone = kept.undo(draft(1))
    assert kept.redo(undone) == draft(1)


def test_undo_then_redo_walks_back_and_forth():
    kept = History()
    kept.record(draft(0))
    kept.record(draft(1))
    current = draft(2)
    current = kept.undo(current)
    current = kept.undo(current)
    assert current == draft(0)
    current = kept.redo(current)
    assert current == draft(1)
    current = kept.redo(current)
    assert current == draft(2)
    assert kept.redo(current) is None


def test_redo_makes_the_edit_undoable_again():
    kept = History()
    kept.record(draft(0))
    current = kept.undo(draft(1))
    current = kept.redo(current)
    assert kept.undo(current) == draft(0)


def test_redo_with_nothing_to_redo_keeps_the_past():
    kept = History()
    kept.record(draft(0))
    assert kept.redo(draft(1)) is None
    assert kept.past == [draft(0)]


def test_a_new_edit_clears_redo():
    kept = History()
    kept.record(draft(0))
    kept.undo(draft(1))
    kept.record(draft(0))
    assert kept.future == []
    assert kept.redo(draft(5)) is None


def test_a_new_edit_after_undo_keeps_the_earlier_past():
    kept = History()
    kept.record(draft(0))
    kept.record(draft(1))
    current = kept.undo(draft(2))
    kept.record(current)
    assert kept.past == [draft(0), draft(1)]


def test_the_limit_is_a_hundred_edits():
    assert history.LIMIT == 100


def test_record_keeps_at_most_the_limit_forgetting_the_oldest():
    kept = History()
    for number in range(history.LIMIT + 50):
        kept.record(draft(number))
    assert len(kept.past) == history.LIMIT
    assert kept.past[0] == draft(50)
    assert kept.past[-1] == draft(149)


def test_record_up_to_the_limit_forgets_nothing():
    kept = History()
    for number in range(history.LIMIT):
        kept.record(draft(number))
    assert kept.past == [draft(n) for n in range(history.LIMIT)]


def test_undo_stops_after_the_limit():
    kept = History()
    for number in range(history.LIMIT + 5):
        kept.record(draft(number))
    current = draft(history.LIMIT + 5)
    undone = 0
    while (previous := kept.undo(current)) is not None:
        current = previous
        undone += 1
    assert undone == history.LIMIT
    assert current == draft(5)


def test_undo_and_redo_never_grow_past_the_limit():
    kept = History()
    for number in range(history.LIMIT):
        kept.record(draft(number))
    current = draft(history.LIMIT)
    for _ in range(10):
        current = kept.undo(current)
    for _ in range(10):
        current = kept.redo(current)
    assert len(kept.past) == history.LIMIT
    assert kept.future == []
    assert current == draft(history.LIMIT)


def test_histories_do_not_share_their_lists():
    first, second = History(), History()
    first.record(draft(0))
    assert second.past == []


def test_record_keeps_the_snapshot_given():
    kept = History()
    snapshot = draft(0)
    kept.record(snapshot)
    assert kept.undo(draft(1)) is snapshot


def test_undo_does_not_change_the_lists_it_replaced():
    kept = History()
    kept.record(draft(0))
    past_before, future_before = kept.past, kept.future
    kept.undo(draft(1))
    assert past_before == [draft(0)]
    assert future_before == []
