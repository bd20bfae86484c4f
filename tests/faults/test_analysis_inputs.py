"""hpsearch analyze | export | seeds | report on bad input: one line and exit status 2, never a traceback;
a sweep given by name under --results; relative paths from the user's own folder."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))
from runfolders import build_runs_folder, build_sweep_folder, write_run  # noqa: E402
from test_unwritable import unwritable  # noqa: E402

from cl_rnn.config import Config  # noqa: E402
from hpsearch.cli import main as hpsearch_main  # noqa: E402

COMMANDS = ["analyze", "export", "seeds", "report"]


@pytest.fixture
def no_ray_reruns(monkeypatch: pytest.MonkeyPatch) -> list[Config]:
    """``hpsearch seeds`` without Ray: each rerun is written at once (accuracies as the winner's)."""
    received: list[Config] = []

    def run_configs(configs: list[Config], **_: object) -> list[str]:
        for config in configs:
            received.append(config)
            write_run(Path(config.out_dir), config, [60.0] * 3, [70.0] * 3)
        return [""] * len(configs)

    monkeypatch.setattr("hpsearch.ray_adapter.run_configs", run_configs)
    return received


def one_line_refusal(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    assert hpsearch_main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


# --- a broken trials.csv -------------------------------------------------------------------------

def broken_trials_csv(good: bytes, how: str) -> bytes:
    return {"empty": b"",
            "cut_in_the_header": good[:20],
            "cut_in_a_quoted_error": good + b'H,failed,,,,,,,,,,"ValueError: bo',
            "a_row_too_long": good + b"H,failed" + b",x" * 30 + b"\n",
            "not_text": b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe",
            "cut_in_a_row": good[: good.rindex(b"\nF,") + 6]}[how]


CAUSES = {"empty": "empty file",
          "cut_in_the_header": "missing columns node, run_folder, stop_reason, error",
          "cut_in_a_quoted_error": "EOF inside string starting at row 8",
          "a_row_too_long": "fields in line 9, saw 32",  # pandas: "Expected <header width> fields ..."
          "not_text": "not UTF-8 text",
          "cut_in_a_row": "trial F: state 'fai' is not one of"}


@pytest.mark.parametrize("how", list(CAUSES))
@pytest.mark.parametrize("command", COMMANDS)
def test_a_broken_trials_csv_is_one_line_naming_it(tmp_path, capsys, no_ray_reruns, command, how):
    sweep = build_sweep_folder(tmp_path / "sweep")
    table = sweep / "trials.csv"
    table.write_bytes(broken_trials_csv(table.read_bytes(), how))
    line = one_line_refusal([command, str(sweep)], capsys)
    assert line.startswith(f"hpsearch {command}: {table}: not a readable trials table (")
    assert CAUSES[how] in line and line.endswith("; delete it to analyze the run folders without it")
    assert no_ray_reruns == []


def test_a_broken_seeds_csv_under_report_is_one_line_naming_it(tmp_path, capsys):
    sweep = build_sweep_folder(tmp_path / "sweep")
    (sweep / "seeds.csv").write_text("trial,seed\nB,42,extra,fields\n")
    line = one_line_refusal(["report", str(sweep)], capsys)
    assert line.startswith(f"hpsearch report: {sweep / 'seeds.csv'}: not a readable seeds table (")
    assert line.endswith("; delete it or run hpsearch seeds again")


def test_a_seeds_csv_with_words_for_accuracies_under_report_is_one_line(tmp_path, capsys):
    sweep = build_sweep_folder(tmp_path / "sweep")
    (sweep / "seeds.csv").write_text("trial,seed,state,during,final\nB,1,finished,abc,xyz\n")
    line = one_line_refusal(["report", str(sweep)], capsys)
    assert line == (f"hpsearch report: {sweep / 'seeds.csv'}: not a readable seeds table (could not convert "
                    "string to float: 'abc'); delete it or run hpsearch seeds again")


def test_a_header_only_seeds_csv_under_report_is_a_report_without_reruns(tmp_path, capsys):
    # hpsearch seeds writes seeds.csv; one that holds its header and no row (cut short, or by hand) is no
    # traceback: the report says there are none.  analyze, export and seeds never read it.
    sweep = build_sweep_folder(tmp_path / "sweep")
    (sweep / "seeds.csv").write_text("trial,seed,state,during,final,min_during,min_final,seconds,error,run_dir\n")
    assert hpsearch_main(["report", str(sweep)]) == 0, capsys.readouterr().err
    text = (sweep / "report.md").read_text()
    assert "## Winners over seeds (hpsearch seeds; std ddof 0, SEM = std / sqrt(n))\n\n(none)\n" in text


@pytest.mark.parametrize("command", COMMANDS)
def test_a_result_json_with_the_wrong_types_is_one_line_naming_it(tmp_path, capsys, no_ray_reruns, command):
    sweep = build_sweep_folder(tmp_path / "sweep")
    result = sweep / "trial_B" / "run" / "result.json"
    result.write_text('{"finished": true, "during": 5, "final": ["x"]}')
    assert one_line_refusal([command, str(sweep)], capsys) == (
        f"hpsearch {command}: {result}: 'during' is not a list of accuracies; rerun that run or delete its folder")


def test_a_damaged_optuna_journal_costs_the_importances_not_the_report(tmp_path, capsys):
    sweep = build_sweep_folder(tmp_path / "sweep")
    (sweep / "optuna.journal").write_text("not json\n{]\n")
    assert hpsearch_main(["report", str(sweep)]) == 0
    assert "Hyperparameter importances skipped: the Optuna journal is unreadable (" in (sweep / "report.md").read_text()


# --- outputs that cannot be written ------------------------------------------------------------------

@pytest.mark.parametrize("how", ["file_in_the_way", "read_only"])
@pytest.mark.parametrize("command, flag", [("analyze", "--csv"), ("export", "--out")])
def test_an_unwritable_output_file_is_one_line_naming_it(tmp_path, capsys, command, flag, how):
    sweep = build_sweep_folder(tmp_path / "sweep")
    folder, reason = unwritable(tmp_path, how)
    out = folder / "table.csv"
    line = one_line_refusal([command, str(sweep), flag, str(out)], capsys)
    assert line == f"hpsearch {command}: {out}: cannot write ({reason}); give {flag} a writable path"


@pytest.mark.parametrize("command, blocked", [("report", "plots"), ("seeds", "seeds"), ("export", "winners.txt")])
def test_a_sweep_folder_that_cannot_take_the_output_is_one_line(tmp_path, capsys, no_ray_reruns, command, blocked):
    sweep = build_sweep_folder(tmp_path / "sweep")
    (sweep / blocked).mkdir() if blocked == "winners.txt" else (sweep / blocked).write_text("in the way")
    reason = "Is a directory" if blocked == "winners.txt" else f"{sweep / blocked} is a file, not a folder"
    line = one_line_refusal([command, str(sweep)], capsys)
    assert line.startswith(f"hpsearch {command}: {sweep / blocked}") and f": cannot write ({reason}); " in line
    assert no_ray_reruns == []


def test_a_file_where_an_output_folder_should_be_is_named(tmp_path, monkeypatch, capsys):
    sweep = build_sweep_folder(tmp_path / "sweep")
    monkeypatch.chdir(tmp_path)
    Path("blocker").write_text("a file")
    assert one_line_refusal(["analyze", str(sweep), "--csv", "blocker/all.csv"], capsys) == (
        "hpsearch analyze: blocker/all.csv: cannot write (blocker is a file, not a folder); give --csv a writable path")


# --- a sweep by name, relative paths -----------------------------------------------------------------

@pytest.mark.parametrize("command", COMMANDS)
def test_a_sweep_name_is_looked_up_under_results(tmp_path, monkeypatch, capsys, no_ray_reruns, command):
    sweep = build_sweep_folder(tmp_path / "results" / "quickstart")
    build_sweep_folder(tmp_path / "elsewhere" / "other")
    monkeypatch.chdir(tmp_path)
    assert hpsearch_main([command, "quickstart", "--top", "1"]) == 0
    assert hpsearch_main([command, "other", "--results", "elsewhere", "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert str(sweep) in out and str(tmp_path / "elsewhere" / "other") in out


def test_a_path_that_exists_wins_over_a_name_under_results(tmp_path, monkeypatch, capsys):
    build_sweep_folder(tmp_path / "results" / "quickstart")
    build_runs_folder(tmp_path / "quickstart")
    monkeypatch.chdir(tmp_path)
    assert hpsearch_main(["analyze", "quickstart"]) == 0
    assert "run_A" in capsys.readouterr().out  # the single runs' folder, not the sweep's trial_A/run


def test_no_such_sweep_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert one_line_refusal(["analyze", "nothing"], capsys) == "hpsearch analyze: nothing: no such folder"


def test_relative_paths_resolve_against_the_users_folder(tmp_path, monkeypatch, capsys):
    sweep = build_sweep_folder(tmp_path / "results" / "q")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert hpsearch_main(["analyze", "../results/q", "--csv", "all.csv"]) == 0
    assert hpsearch_main(["export", "../results/q", "--out", "best.txt"]) == 0
    assert hpsearch_main(["report", "../results/q"]) == 0
    assert (tmp_path / "work" / "all.csv").is_file() and (tmp_path / "work" / "best.txt").is_file()
    assert (sweep / "report.md").is_file() and (sweep / "plots").is_dir()


def test_an_exported_line_names_its_data_file_by_an_absolute_path(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_run(tmp_path / "runs" / "r", Config(multi_head=True, num_tasks=3, data="data/d.h5"), [60.0] * 3, [70.0] * 3)
    assert hpsearch_main(["export", "runs", "--out", "w.txt"]) == 0
    line = (tmp_path / "w.txt").read_text().splitlines()[1]
    assert f"--data={tmp_path / 'data' / 'd.h5'}" in line
