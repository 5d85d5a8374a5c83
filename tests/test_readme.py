"""The README's first two commands are what a new user runs, and CI runs the same test command."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_the_readme_starts_with_the_main_job_and_the_test_command():
    train, test = _readme_commands()[:2]
    assert train.endswith("chainrule train")
    assert "torch==2.13.0" in test and test.endswith("python -m pytest")


def test_ci_runs_the_readmes_test_command():
    test = _readme_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert any(line.startswith(test) for line in ci.splitlines()), test
