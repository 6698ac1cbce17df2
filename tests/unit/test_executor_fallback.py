"""Without the ray package, ``--executor ray`` falls back to the local executor with one line that
says how to get Ray; asking for Ray where it is required is a UserError naming the install."""

from __future__ import annotations

from typing import Any

import pytest

from iml_tui.errors import UserError
from iml_tui.parallel import actors, runner
from iml_tui.parallel.runner import ExecutorOptions, Task, run_tasks


def _setup(offset: int) -> int:
    return offset


def _add(state: int, emit: Any, x: int) -> int:
    emit(("seen", x))
    return state + x


class _Counter:
    def __init__(self, start: int) -> None:
        self.value = start

    def bump(self, by: int) -> int:
        self.value += by
        return self.value


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "ray_module", lambda: None)
    monkeypatch.setattr(actors, "ray_module", lambda: None)


def test_tasks_run_locally_with_a_note(no_ray: None, capsys: pytest.CaptureFixture[str]) -> None:
    events: list[Any] = []
    got = run_tasks(
        [Task("a", _add, (3,)), Task("b", _add, (4,))],
        ExecutorOptions("ray", ray_address="auto"),
        _setup,
        (10,),
        on_event=events.append,
    )
    assert got == {"a": 13, "b": 14}
    assert events == [("seen", 3), ("seen", 4)]
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "Ray is not installed, using the local executor" in err
    assert "pip install 'iml-tui[ray]'" in err


def test_actor_groups_fall_back_to_local_workers(
    no_ray: None, capsys: pytest.CaptureFixture[str]
) -> None:
    group = actors.make_group("ray", _Counter, [(1,)])
    assert isinstance(group, actors.InlineGroup)
    assert group.call("bump", [(2,)]) == [3]
    group.close()
    assert "pip install 'iml-tui[ray]'" in capsys.readouterr().err


def test_requiring_ray_names_the_install(no_ray: None) -> None:
    with pytest.raises(UserError, match=r"iml-tui\[ray\]"):
        actors.ensure_ray(None)
