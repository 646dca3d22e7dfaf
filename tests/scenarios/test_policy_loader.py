"""Broken policy files must be reported by file, 1-based line and field path.

Users fix configs from the message alone, so each case below writes one broken
policy to disk and checks the exact issue the loader reports. The expected line is
marked in the YAML itself with a `# <-` comment, so the table stays readable and
the line numbers cannot drift from the text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from router.core.errors import ConfigError, ConfigIssue
from router.core.policy import Policy
from scenarios.policy_files import load_policy
from scenarios.yaml_source import MAX_NODES, parse_yaml
from tests.scenarios.editing import MARK, edited, marked_line
from tests.scenarios.editing import write as write_file

KEY_HASH = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

BASE = """\
deployments:
  - id: gpt-4o@openai
    protocol: openai
    base_url: https://api.openai.com/v1
    model: gpt-4o
    api_key: ${OPENAI_API_KEY}
    price: {input_per_mtok: 2.50, output_per_mtok: 10.00}
    context_window: 128000
    region: us
    domains: [vendor:openai, edge:cloudflare]
  - id: claude-sonnet-4.5@anthropic
    protocol: anthropic
    base_url: https://api.anthropic.com
    model: claude-sonnet-4-5-20250929
    price: {input_per_mtok: 3.00, output_per_mtok: 15.00}
    context_window: 200000
    region: us
routes:
  - name: default
    strategy: ordered
    targets: [gpt-4o@openai]
    fallbacks: [claude-sonnet-4.5@anthropic]
"""

TENANTS = f"""\
tenants:
  acme:
    key_sha256: [{KEY_HASH}]
    spend: {{soft_usd: 10, hard_usd: 20, degrade_to: default}}
"""


def policy(*edits: tuple[str, str], tail: str = "") -> str:
    """BASE (+ `tail`) with each `(old, new)` replaced; `old` must occur exactly once."""
    return edited(BASE + tail, *edits)


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    return write_file(tmp_path, text, name)


def issues_of(path: Path, **kwargs: Any) -> list[ConfigIssue]:
    """The issues `load_policy` reports for `path` (failing the test if it loads)."""
    kwargs.setdefault("env", {})
    with pytest.raises(ConfigError) as caught:
        load_policy(path, **kwargs)
    assert caught.value.issues, "a ConfigError always carries at least one issue"
    return caught.value.issues


# (policy text with the expected line marked, expected field path, message fragment)
FIELD_CASES = [
    pytest.param(
        policy(("targets: [gpt-4o@openai]", f"targets: [gpt-4o@openai, gpt-5@openai] {MARK}")),
        "routes[0].targets[1]",
        "unknown deployment 'gpt-5@openai'",
        id="unknown-target",
    ),
    pytest.param(
        policy(("fallbacks: [claude-sonnet-4.5@anthropic]", f"fallbacks: [claude@aws] {MARK}")),
        "routes[0].fallbacks[0]",
        "unknown deployment 'claude@aws'",
        id="unknown-fallback",
    ),
    pytest.param(
        policy(
            ("  - id: claude-sonnet-4.5@anthropic", f"  - id: gpt-4o@openai {MARK}"),
            ("    fallbacks: [claude-sonnet-4.5@anthropic]\n", ""),
        ),
        "deployments[1].id",
        "duplicate deployment id 'gpt-4o@openai'",
        id="duplicate-deployment-id",
    ),
    pytest.param(
        policy(tail=f"  - name: default {MARK}\n    targets: [gpt-4o@openai]\n"),
        "routes[1].name",
        "duplicate route name 'default'",
        id="duplicate-route",
    ),
    pytest.param(
        policy(
            ("    region: us\n    domains", f"    region: us\n    regoin: us {MARK}\n    domains")
        ),
        "deployments[0].regoin",
        "unknown field (check its spelling and place)",
        id="misspelled-field",
    ),
    pytest.param(
        policy(("strategy: ordered", f"strategy: ordered\n    fallback: [] {MARK}")),
        "routes[0].fallback",
        "unknown field",
        id="misspelled-route-field",
    ),
    pytest.param(
        policy(("context_window: 128000", f'context_window: "big" {MARK}')),
        "deployments[0].context_window",
        "valid integer",
        id="wrong-type",
    ),
    pytest.param(
        policy(
            (
                "price: {input_per_mtok: 3.00, output_per_mtok: 15.00}",
                f"price: {{input_per_mtok: 3.00, output_per_mtok: -15.00}} {MARK}",
            )
        ),
        "deployments[1].price.output_per_mtok",
        "greater than or equal to 0",
        id="negative-price",
    ),
    pytest.param(
        policy(
            (
                "    price: {input_per_mtok: 2.50, output_per_mtok: 10.00}\n",
                f"    price:\n      input_per_mtok: -2.50 {MARK}\n      output_per_mtok: 10.00\n",
            )
        ),
        "deployments[0].price.input_per_mtok",
        "greater than or equal to 0",
        id="negative-price-block-mapping",
    ),
    pytest.param(
        policy(
            ("    price: {input_per_mtok: 2.50, output_per_mtok: 10.00}\n", ""),
            ("  - id: gpt-4o@openai", f"  - id: gpt-4o@openai {MARK}"),
        ),
        "deployments[0].price",
        "Field required",
        id="missing-field-points-at-its-parent",
    ),
    pytest.param(
        policy(("[vendor:openai, edge:cloudflare]", f"[vendor:openai, cloudflare] {MARK}")),
        "deployments[0].domains",
        "failure domain 'cloudflare' must look like 'kind:name'",
        id="bad-domain-label",
    ),
    pytest.param(
        policy(
            (
                "    domains: [vendor:openai, edge:cloudflare]\n",
                f"    domains: {MARK}\n      - vendor:openai\n      - Edge Cloudflare\n",
            )
        ),
        "deployments[0].domains",
        "failure domain 'Edge Cloudflare'",
        id="bad-domain-label-in-block-list-points-at-the-key",
    ),
    pytest.param(
        policy(("strategy: ordered", f"strategy: fastest {MARK}")),
        "routes[0].strategy",
        "'ordered', 'cheapest', 'quality', 'latency', 'weighted' or 'cascade'",
        id="bad-strategy",
    ),
    pytest.param(
        policy(
            (
                "    region: us\n    domains",
                f"    capabilities: [tools, telepathy] {MARK}\n    region: us\n    domains",
            )
        ),
        "deployments[0].capabilities[1]",
        "'tools', 'streaming', 'json' or 'vision'",
        id="bad-capability",
    ),
    pytest.param(
        policy(("protocol: anthropic", f"protocol: claude {MARK}")),
        "deployments[1].protocol",
        "'openai', 'azure-openai', 'anthropic', 'gemini', 'bedrock' or 'mistral'",
        id="bad-protocol",
    ),
    pytest.param(
        policy(
            ("strategy: ordered", "strategy: weighted"),
            ("  - name: default", f"  - name: default {MARK}"),
        ),
        "routes[0].weights",
        "strategy 'weighted' needs weights",
        id="weighted-without-weights",
    ),
    pytest.param(
        policy(
            ("strategy: ordered", "strategy: weighted"),
            (
                "targets: [gpt-4o@openai]",
                f"targets: [gpt-4o@openai]\n    weights: {{gpt-4: 1}} {MARK}",
            ),
        ),
        "routes[0].weights.gpt-4",
        "'gpt-4' is not a target of this route",
        id="weight-for-a-non-target",
    ),
    pytest.param(
        policy(
            (
                "spend: {soft_usd: 10, hard_usd: 20, degrade_to: default}",
                f"spend: {{soft_usd: 10, hard_usd: 20}} {MARK}",
            ),
            tail=TENANTS,
        ),
        "tenants.acme.spend.degrade_to",
        "soft_usd needs degrade_to",
        id="soft-cap-without-degrade-to",
    ),
    pytest.param(
        policy(tail=f"resilience:\n  streaming:\n    hold_tokens: -1 {MARK}\n"),
        "resilience.streaming.hold_tokens",
        "greater than or equal to 0",
        id="negative-hold-tokens",
    ),
    pytest.param(
        policy(("degrade_to: default}", f"degrade_to: cheap}} {MARK}"), tail=TENANTS),
        "tenants.acme.spend.degrade_to",
        "unknown route 'cheap'",
        id="degrade-to-unknown-route",
    ),
    pytest.param(
        policy(
            (
                "    spend: {soft_usd: 10, hard_usd: 20, degrade_to: default}\n",
                f"    spend:\n      soft_usd: 30 {MARK}\n      hard_usd: 20\n"
                "      degrade_to: default\n",
            ),
            tail=TENANTS,
        ),
        "tenants.acme.spend.soft_usd",
        "soft_usd exceeds hard_usd",
        id="soft-cap-above-hard-cap",
    ),
    pytest.param(
        policy((f"[{KEY_HASH}]", f"[sk-plaintext-key] {MARK}"), tail=TENANTS),
        "tenants.acme.key_sha256",
        "64 lowercase hex characters",
        id="bad-key-sha256",
    ),
    pytest.param(
        policy((f"[{KEY_HASH}]", f"[{KEY_HASH.upper()}] {MARK}"), tail=TENANTS),
        "tenants.acme.key_sha256",
        "64 lowercase hex characters",
        id="uppercase-key-sha256",
    ),
    pytest.param(
        policy(tail=TENANTS + f"  beta:\n    key_sha256: [{KEY_HASH}] {MARK}\n"),
        "tenants.beta.key_sha256[0]",
        "this key already belongs to tenant 'acme'",
        id="key-of-two-tenants",
    ),
    pytest.param(
        policy(("  acme:\n", f"  acme:\n    routes: [default, premium] {MARK}\n"), tail=TENANTS),
        "tenants.acme.routes[1]",
        "unknown route 'premium'",
        id="tenant-unknown-route",
    ),
    pytest.param(
        policy(("    model: gpt-4o\n", f"    model: gpt-4o\n    model: gpt-4o-mini {MARK}\n")),
        "deployments[0].model",
        "duplicate key (an earlier value would be silently lost)",
        id="duplicate-yaml-key",
    ),
    pytest.param(
        policy(
            ("  acme:\n", f"  acme:\n    residency: [eu]\n    residency: [us] {MARK}\n"),
            tail=TENANTS,
        ),
        "tenants.acme.residency",
        "duplicate key",
        id="duplicate-yaml-key-in-tenant",
    ),
    pytest.param(
        policy(
            (
                "    region: us\n    domains",
                f"    api_version: 2024-10-21 {MARK}\n    region: us\n    domains",
            )
        ),
        "deployments[0].api_version",
        "valid string",
        id="unquoted-date",
    ),
    pytest.param(
        policy(("    model: gpt-4o\n", f"    model: !vault gpt-4o {MARK}\n")),
        "deployments[0].model",
        "could not determine a constructor for the tag '!vault'",
        id="unknown-yaml-tag",
    ),
]


@pytest.mark.parametrize(("text", "field", "message"), FIELD_CASES)
def test_broken_policy_names_file_line_and_field(
    tmp_path: Path, text: str, field: str, message: str
) -> None:
    path = write(tmp_path, text)
    issues = issues_of(path)
    first = issues[0]
    assert (first.file, first.line, first.field) == (str(path), marked_line(text), field), issues
    assert message in first.message, issues
    assert str(first) == f"{path}:{first.line}: {field}: {first.message}"
    assert all(issue.file == str(path) for issue in issues)


def test_the_message_reads_like_the_contract(tmp_path: Path) -> None:
    """DESIGN.md: "message names file, line and field" — spelled out once, in full."""
    path = write(
        tmp_path, policy(("targets: [gpt-4o@openai]", "targets: [gpt-4o@openai, gpt-5@openai]"))
    )
    assert [str(issue) for issue in issues_of(path)] == [
        f"{path}:21: routes[0].targets[1]: unknown deployment 'gpt-5@openai'"
    ]


# Whole-document problems: (text, expected line, message fragment); the field is the root.
DOCUMENT_CASES = [
    pytest.param(
        "deployments:\n  - id: a\n    targets: [x\n    region: us\n",
        4,
        "YAML syntax: while parsing a flow sequence, expected ',' or ']'",
        id="yaml-syntax-error",
    ),
    pytest.param(
        "deployments:\n  - id: a\n\tregion: us\n",
        3,
        "YAML syntax",
        id="tab-indentation",
    ),
    pytest.param(
        "deployments: []\nroutes: []\n---\ndeployments: []\n",
        3,
        "expected a single document in the stream, but found another document",
        id="two-documents",
    ),
    pytest.param(
        "- gpt-4o@openai\n- claude@anthropic\n",
        1,
        "a policy must be a mapping with deployments and routes",
        id="list-document",
    ),
    pytest.param(
        "\n\njust a string\n",
        3,
        "a policy must be a mapping with deployments and routes",
        id="scalar-document",
    ),
    pytest.param("", 1, "a policy must be a mapping", id="empty-file"),
    pytest.param("# nothing but a comment\n", 1, "a policy must be a mapping", id="comment-only"),
    pytest.param("deployments: []\nroutes: []\n", 1, "at least 1 item", id="empty-lists"),
]


@pytest.mark.parametrize(("text", "line", "message"), DOCUMENT_CASES)
def test_broken_document_names_file_and_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = write(tmp_path, text)
    issues = issues_of(path)
    assert issues[0].file == str(path)
    assert issues[0].line == line, issues
    assert message in issues[0].message, issues


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    [issue] = issues_of(missing)
    assert issue.file == str(missing) and "cannot read" in issue.message
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"deployments: \xff\xfe\n")
    [issue] = issues_of(binary)
    assert issue.file == str(binary) and "cannot read" in issue.message


# -- several problems at once ---------------------------------------------------------------


def test_every_field_error_is_reported_at_once(tmp_path: Path) -> None:
    text = policy(
        ("context_window: 128000", 'context_window: "big"'),
        ("[vendor:openai, edge:cloudflare]", "[cloudflare]"),
        ("    region: us\nroutes", "    region: us\n    colour: blue\nroutes"),
        ("strategy: ordered", "strategy: fastest"),
    )
    path = write(tmp_path, text)
    found = {(issue.line, issue.field) for issue in issues_of(path)}
    assert {
        (8, "deployments[0].context_window"),
        (10, "deployments[0].domains"),
        (18, "deployments[1].colour"),
        (21, "routes[0].strategy"),
    } <= found


def test_every_cross_reference_error_is_reported_at_once(tmp_path: Path) -> None:
    text = policy(
        ("targets: [gpt-4o@openai]", "targets: [gpt-5@openai, o3@openai]"),
        ("fallbacks: [claude-sonnet-4.5@anthropic]", "fallbacks: [claude@aws]"),
        tail=TENANTS.replace("degrade_to: default", "degrade_to: cheap"),
    )
    path = write(tmp_path, text)
    assert [(issue.line, issue.field, issue.message) for issue in issues_of(path)] == [
        (21, "routes[0].targets[0]", "unknown deployment 'gpt-5@openai'"),
        (21, "routes[0].targets[1]", "unknown deployment 'o3@openai'"),
        (22, "routes[0].fallbacks[0]", "unknown deployment 'claude@aws'"),
        (26, "tenants.acme.spend.degrade_to", "unknown route 'cheap'"),
    ]


def test_every_duplicate_key_is_reported_at_once(tmp_path: Path) -> None:
    text = policy(
        ("    model: gpt-4o\n", "    model: gpt-4o\n    model: gpt-4o-mini\n"),
        ("    region: us\nroutes", "    region: us\n    region: eu\nroutes"),
    )
    path = write(tmp_path, text)
    assert [(issue.line, issue.field) for issue in issues_of(path)] == [
        (6, "deployments[0].model"),
        (19, "deployments[1].region"),
    ]


def test_field_and_cross_reference_errors_are_reported_together(tmp_path: Path) -> None:
    text = policy(
        ("context_window: 128000", 'context_window: "big"'),
        ("targets: [gpt-4o@openai]", "targets: [gpt-5@openai]"),
    )
    fields = {issue.field for issue in issues_of(write(tmp_path, text))}
    assert fields == {"deployments[0].context_window", "routes[0].targets[0]"}


def test_one_bad_item_is_one_issue(tmp_path: Path) -> None:
    text = policy(("strategy: ordered", "strategy: fastest"))
    assert [issue.field for issue in issues_of(write(tmp_path, text))] == ["routes[0].strategy"]


# -- ${VAR} interpolation -------------------------------------------------------------------


def load_text(tmp_path: Path, text: str, **kwargs: Any) -> Policy:
    return load_policy(write(tmp_path, text), **kwargs)


def test_env_variable_is_interpolated(tmp_path: Path) -> None:
    loaded = load_text(tmp_path, BASE, env={"OPENAI_API_KEY": "sk-test-123"})
    api_key = loaded.deployment("gpt-4o@openai").api_key
    assert api_key is not None and api_key.get_secret_value() == "sk-test-123"
    assert "sk-test-123" not in repr(loaded), "secrets never show up in reprs or logs"


def test_env_default_is_used_when_unset_and_overridden_when_set(tmp_path: Path) -> None:
    text = policy(
        (
            "base_url: https://api.openai.com/v1",
            "base_url: ${OPENAI_BASE_URL:-https://api.openai.com/v1}",
        )
    )
    unset = load_text(tmp_path, text, env={})
    assert unset.deployment("gpt-4o@openai").base_url == "https://api.openai.com/v1"
    local = load_text(tmp_path, text, env={"OPENAI_BASE_URL": "http://127.0.0.1:9000/v1"})
    assert local.deployment("gpt-4o@openai").base_url == "http://127.0.0.1:9000/v1"


def test_env_inside_a_longer_string_and_never_expanded_twice(tmp_path: Path) -> None:
    text = policy(("base_url: https://api.openai.com/v1", "base_url: https://${HOST}/v1"))
    loaded = load_text(tmp_path, text, env={"HOST": "${OPENAI_API_KEY}", "OPENAI_API_KEY": "x"})
    assert loaded.deployment("gpt-4o@openai").base_url == "https://${OPENAI_API_KEY}/v1"


def test_missing_secret_is_fine_for_validation(tmp_path: Path) -> None:
    loaded = load_text(tmp_path, BASE, env={})
    assert loaded.deployment("gpt-4o@openai").api_key is None


def test_missing_secret_is_an_error_when_serving(tmp_path: Path) -> None:
    text = policy(
        ("    api_key: ${OPENAI_API_KEY}\n", f"    api_key: ${{OPENAI_API_KEY}} {MARK}\n")
    )
    path = write(tmp_path, text)
    [issue] = issues_of(path, env={}, require_env=True)
    assert (issue.file, issue.line, issue.field) == (
        str(path),
        marked_line(text),
        "deployments[0].api_key",
    )
    assert "environment variable" in issue.message


def test_every_missing_variable_is_reported_when_serving(tmp_path: Path) -> None:
    text = policy(
        ("base_url: https://api.anthropic.com", "base_url: ${ANTHROPIC_BASE_URL}"),
    )
    issues = issues_of(write(tmp_path, text), env={}, require_env=True)
    assert [(issue.line, issue.field) for issue in issues] == [
        (6, "deployments[0].api_key"),
        (13, "deployments[1].base_url"),
    ]


def test_set_variables_satisfy_require_env(tmp_path: Path) -> None:
    loaded = load_text(tmp_path, BASE, env={"OPENAI_API_KEY": "sk-x"}, require_env=True)
    assert loaded.name == "policy"


# -- YAML features and hostile input --------------------------------------------------------


def test_merge_keys_share_settings_between_deployments(tmp_path: Path) -> None:
    text = """\
x-openai: &openai
  protocol: openai
  base_url: https://api.openai.com/v1
  region: us
  domains: [vendor:openai, edge:cloudflare]
deployments:
  - <<: *openai
    id: gpt-4o@openai
    model: gpt-4o
    price: {input_per_mtok: 2.50, output_per_mtok: 10.00}
    context_window: 128000
routes:
  - name: default
    targets: [gpt-4o@openai]
"""
    # `x-openai` is not a policy field: the loader must say so, at its line, not crash.
    [issue] = issues_of(write(tmp_path, text))
    assert (issue.line, issue.field) == (1, "x-openai")
    parsed = parse_yaml(text, source="inline")
    deployment = parsed.data["deployments"][0]
    assert deployment["protocol"] == "openai" and deployment["id"] == "gpt-4o@openai"
    assert parsed.line_of(("deployments", 0, "region")) == 4, "inherited keys keep their line"


def test_explicit_keys_win_over_merged_ones() -> None:
    parsed = parse_yaml("a: &a {x: 1, y: 1}\nb:\n  x: 2\n  <<: *a\n", source="inline")
    assert parsed.data["b"] == {"x": 2, "y": 1}
    assert parsed.line_of(("b", "x")) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("a: &x\n  b: *x\n", "recursive alias", id="recursive-mapping"),
        pytest.param("a: &x [1, *x]\n", "recursive alias", id="recursive-sequence"),
        pytest.param("a: &x\n  <<: *x\n", "recursive alias", id="recursive-merge"),
        pytest.param("a: !!python/object:os.system {}\n", "unsupported YAML tag", id="python-tag"),
        pytest.param("a: !!timestamp nope\n", "cannot read value", id="malformed-timestamp"),
        pytest.param("a: *missing\n", "undefined alias", id="undefined-alias"),
        pytest.param("<<: 3\n", "merge key", id="merge-of-a-scalar"),
    ],
)
def test_hostile_yaml_is_a_config_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, source="hostile.yaml")
    assert any(message in issue.message for issue in caught.value.issues), caught.value.issues
    assert all(issue.file == "hostile.yaml" for issue in caught.value.issues)


def test_alias_bomb_is_refused() -> None:
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 7)]
    with pytest.raises(ConfigError) as caught:
        parse_yaml("\n".join(lines) + "\n", source="bomb.yaml")
    assert str(MAX_NODES) in caught.value.issues[0].message


def test_absurd_nesting_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml("a: " + "[" * 5000 + "]" * 5000 + "\n", source="deep.yaml")
    assert "nested too deeply" in caught.value.issues[0].message
