"""The README's Python API blocks name modules and classes that exist."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_imports_resolve():
    imports = [line for block in python_blocks() for line in block.splitlines()
               if re.match(r"(from \S+ )?import ", line)]
    assert len(imports) >= 10  # the lower-level pieces block is there
    namespace: dict = {}
    for line in imports:
        exec(line, namespace)  # an ImportError names the README line that is wrong
    for name in ("SASRec", "PopRec"):  # the README says they share the scoring interface
        assert callable(namespace[name].score_all) and callable(namespace[name].score), name
