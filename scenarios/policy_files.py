"""Reading policy files from disk into validated `Policy` objects.

The router core validates data but never opens files; this is the edge where a
path becomes text, text becomes YAML with line numbers, and every problem comes
back as one `ConfigError` naming file, line and field.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from router.core.policy import Policy, policy_from_data
from scenarios.overrides import Override, apply_overrides
from scenarios.yaml_source import read_yaml

__all__ = ["POLICY_DIR", "load_policy", "shipped_policies"]

POLICY_DIR = Path(__file__).parent / "policies"


def load_policy(
    path: str | Path,
    *,
    env: Mapping[str, str] | None = None,
    require_env: bool = False,
    overrides: Sequence[Override] = (),
) -> Policy:
    """Load and validate one policy file; its `name` defaults to the file's stem."""
    path = Path(path)
    parsed = read_yaml(path)
    data = apply_overrides(parsed.data, overrides, source=str(path))
    if isinstance(data, dict) and "name" not in data:
        data = {"name": path.stem, **data}
    return policy_from_data(
        data,
        source=str(path),
        env=os.environ if env is None else env,
        line_of=parsed.line_of,
        require_env=require_env,
    )


def shipped_policies() -> list[Path]:
    """The policies that come with blastradius, in name order."""
    return sorted(POLICY_DIR.glob("*.yaml"))
