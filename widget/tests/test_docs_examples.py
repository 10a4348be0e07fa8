"""The identity-verification examples in docs/widget.md compute what the server checks."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from accounts.services import user_hash_compute

GUIDE = (Path(settings.BASE_DIR) / "docs" / "widget.md").read_text()
SECRET = "bhid_" + "ab12" * 16
USER_ID = "cust-981 ünïcode"


def block(language: str) -> str:
    return re.search(rf"^```{language}\n(.*?)^```", GUIDE, re.M | re.S).group(1)


def test_the_python_example_matches_the_servers_check():
    namespace: dict = {}
    exec(block("python"), namespace)
    assert namespace["bothero_user_hash"](SECRET, USER_ID) == user_hash_compute(identity_secret=SECRET, user_id=USER_ID)


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_the_node_example_matches_the_servers_check():
    script = block("js") + f"\nprocess.stdout.write(bothero_user_hash({SECRET!r}, {USER_ID!r}));\n"
    result = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30, check=True)
    assert result.stdout == user_hash_compute(identity_secret=SECRET, user_id=USER_ID)
