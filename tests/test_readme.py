"""The README's mask-engine example (a model that is not ours) runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_starts_with_the_two_commands():
    text = README.read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    assert first_block.splitlines()[0].startswith("make demo")
    assert first_block.splitlines()[1].startswith("make test")


def test_mask_engine_example_runs(tmp_path, capsys):
    text = README.read_text()
    section = text[text.index("## The mask engine on your own model"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code = code.replace("/tmp/news.safetensors", str(tmp_path / "news.safetensors"))
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    out = capsys.readouterr().out
    assert "IoU" in out
    assert (tmp_path / "news.safetensors").is_file()
