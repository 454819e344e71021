"""Git state (gitstate.py): read where the code is, and untracked code that ran is dirty."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import git, make_repo, metadata_of, run_python, status_of, write_script

from meticulous_hydra.exceptions import DirtyRepoError
from meticulous_hydra.recorder.gitstate import UNTRACKED_CAP, read_git_state

ON = "hydra/callbacks=meticulous"
RECORD = "from meticulous_hydra import Experiment\nexp = Experiment({})\n"


# -- untracked code that ran (issue 12 #5) --------------------------------------


def test_a_new_untracked_script_is_refused(repo: Path) -> None:
    write_script(repo, "new_script.py", RECORD)
    proc = run_python(["new_script.py"], repo)
    assert proc.returncode == 1
    line = proc.stderr.strip().splitlines()[-1]
    assert "uncommitted changes" in line and "new_script.py (untracked" in line
    assert "allow_dirty=True" in line
    assert not (repo / "experiments").exists()


def test_an_untracked_imported_module_is_refused(repo: Path) -> None:
    # a module in a wholly untracked folder: git status lists only "lib/"
    (repo / "lib").mkdir()
    (repo / "lib" / "__init__.py").write_text("")
    (repo / "lib" / "helper.py").write_text("VALUE = 1\n")
    write_script(repo, "run.py", "import lib.helper\n" + RECORD, commit=True)
    proc = run_python(["run.py"], repo)
    assert proc.returncode == 1
    assert "lib/helper.py (untracked" in proc.stderr and "lib/__init__.py" in proc.stderr


def test_untracked_data_is_listed_not_refused(repo: Path) -> None:
    write_script(repo, "run.py", RECORD, commit=True)
    (repo / "data.csv").write_text("a,b\n")
    (repo / "outputs").mkdir()
    (repo / "outputs" / "old.txt").write_text("x\n")
    (repo / "notes.md").write_text("not code\n")
    run_python(["run.py"], repo, check=True)
    m = metadata_of(repo / "experiments" / "1")
    assert m["git"]["dirty"] is False
    assert sorted(m["git"]["untracked"]) == ["data.csv", "notes.md", "outputs/"]
    assert m["git"]["untracked_saved"] == [] and m["git"]["untracked_skipped"] == []
    assert not (repo / "experiments" / "1" / "untracked").exists()


def test_untracked_python_that_may_be_imported_later_is_refused_at_start(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue 20 #12: a Hydra instantiate target, or an import inside the task,
    # runs after the start; the run is refused then, not recorded as clean
    app = repo / "app"
    (app / "lib" / "sub").mkdir(parents=True)
    (app / "lib" / "sub" / "deep.py").write_text("X = 1\n")
    (app / "lib" / "data.csv").write_text("a\n")
    (app / "we[ird]*").mkdir()
    (app / "we[ird]*" / "odd.py").write_text("Y = 1\n")
    (app / "helper.py").write_text("Z = 1\n")
    site = app / "venv" / "lib" / "site-packages"  # an environment inside the repository
    site.mkdir(parents=True)
    (site / "pkg.py").write_text("")
    (repo / "other").mkdir()  # a sibling's new script: in no folder the app imports from
    (repo / "other" / "new.py").write_text("")
    monkeypatch.syspath_prepend(str(app))  # the program runs from app/
    with pytest.raises(DirtyRepoError) as refused:
        read_git_state(app, allow_dirty=False, flag_hint="--allow-dirty")
    line = str(refused.value)
    code = ["app/helper.py", "app/lib/sub/deep.py", "app/we[ird]*/odd.py"]
    for path in code:
        assert f"{path} (untracked, and it may be imported)" in line
    assert "pkg.py" not in line and "data.csv" not in line and "new.py" not in line
    assert ".gitignore" in line
    state = read_git_state(app, allow_dirty=True, flag_hint="--allow-dirty")
    assert state is not None and state.dirty and sorted(state.untracked_code) == code
    assert state.untracked == ["app/", "other/"]


def test_allow_dirty_saves_the_untracked_code_up_to_the_cap(repo: Path) -> None:
    (repo / "lib").mkdir()
    (repo / "lib" / "__init__.py").write_text("")
    (repo / "lib" / "helper.py").write_text("VALUE = 1\n")
    # one module too big to keep: a comment longer than the cap
    (repo / "lib" / "huge.py").write_text("#" + "x" * UNTRACKED_CAP + "\nBIG = 2\n")
    write_script(
        repo,
        "new_script.py",
        "import lib.helper, lib.huge\n"
        "from meticulous_hydra import Experiment\n"
        "exp = Experiment({}, allow_dirty=True)\n",
    )
    (repo / "data.csv").write_text("a,b\n")
    run_python(["new_script.py"], repo, check=True)
    folder = repo / "experiments" / "1"
    git_meta = metadata_of(folder)["git"]
    assert git_meta["dirty"] is True and git_meta["modified"] == []
    assert git_meta["untracked_saved"] == ["lib/__init__.py", "lib/helper.py", "new_script.py"]
    [skipped] = git_meta["untracked_skipped"]
    assert (
        skipped["path"] == "lib/huge.py"
        and skipped["size"] == (repo / "lib" / "huge.py").stat().st_size
    )
    assert str(UNTRACKED_CAP) in skipped["reason"] and git_meta["untracked_cap"] == UNTRACKED_CAP
    assert (folder / "untracked" / "lib" / "helper.py").read_text() == "VALUE = 1\n"
    assert (folder / "untracked" / "new_script.py").read_text().startswith("import lib.helper")
    assert not (folder / "untracked" / "lib" / "huge.py").exists()
    assert not (folder / "untracked" / "data.csv").exists()  # data, not code
    assert status_of(folder)[0] == "SUCCESS"


def test_ignored_and_installed_modules_are_not_the_programs_code(repo: Path) -> None:
    # an ignored module (generated code, say) and a virtualenv inside the repository
    write_script(repo, ".gitignore", "gen_pb2.py\n", commit=True)
    (repo / "gen_pb2.py").write_text("X = 1\n")
    site = repo / "venv" / "lib" / "site-packages"
    site.mkdir(parents=True)
    (site / "somepkg.py").write_text("Y = 1\n")
    write_script(
        repo,
        "run.py",
        f"import sys; sys.path.insert(0, {str(site)!r})\nimport gen_pb2, somepkg\n" + RECORD,
        commit=True,
    )
    run_python(["run.py"], repo, check=True)
    assert metadata_of(repo / "experiments" / "1")["git"]["dirty"] is False


HYDRA_APP = """
import hydra
from meticulous_hydra import current

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg):
    print("task ran in", current().dir)

if __name__ == "__main__":
    main()
"""


def test_an_untracked_hydra_app_is_refused_before_the_task(tmp_path: Path) -> None:
    app = make_repo(tmp_path / "app", {".gitignore": "outputs/\nmultirun/\n"})
    write_script(app, "app.py", HYDRA_APP)
    for args in (["app.py", ON], ["app.py", "-m", ON, "+x=1,2"]):
        proc = run_python(args, app)
        assert proc.returncode == 1
        assert "app.py (untracked" in proc.stderr and "allow_dirty=true" in proc.stderr
        assert "task ran" not in proc.stdout
    run_python(["app.py", ON, "hydra.callbacks.meticulous.allow_dirty=true"], app, check=True)
    folder = app / "experiments" / "1"
    assert metadata_of(folder)["git"]["untracked_saved"] == ["app.py"]
    assert (folder / "untracked" / "app.py").read_text() == (app / "app.py").read_text()


# -- git read where the code is (issue 12 #4) -----------------------------------


def test_hydra_reads_git_where_the_app_is_not_the_launch_directory(tmp_path: Path) -> None:
    app = make_repo(tmp_path / "proj", {"train.py": HYDRA_APP, ".gitignore": "outputs/\n"})
    sha = git(app, "rev-parse", "HEAD").strip()
    outside = tmp_path / "outside"
    outside.mkdir()
    # another repository with an unrelated modified file
    other = make_repo(tmp_path / "other", {"notes.txt": "v1\n"})
    (other / "notes.txt").write_text("v2\n")
    for launch_dir in (outside, other):
        run_python([str(app / "train.py"), ON], launch_dir, check=True)
        git_meta = metadata_of(launch_dir / "experiments" / "1")["git"]
        assert git_meta["sha"] == sha and git_meta["toplevel"] == str(app)
        assert git_meta["dirty"] is False
    for args in (["-m", ON, "+x=1,2"],):  # a sweep too
        run_python([str(app / "train.py"), *args], other, check=True)
        assert {metadata_of(other / "experiments" / n)["git"]["sha"] for n in ("2", "3")} == {sha}


def test_a_linked_script_is_read_in_the_repository_it_points_into(tmp_path: Path) -> None:
    code = make_repo(tmp_path / "code", {"run.py": RECORD})
    (code / "scratch.txt").write_text("untracked, not code\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "run.py").symlink_to(code / "run.py")
    run_python([str(bin_dir / "run.py")], tmp_path, check=True)
    git_meta = metadata_of(tmp_path / "experiments" / "1")["git"]
    assert git_meta["toplevel"] == str(code) and git_meta["dirty"] is False
    assert git_meta["untracked"] == ["scratch.txt"]
