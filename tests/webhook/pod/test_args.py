import pytest

from webhook.pod.args import merge_args

CASES = [
    pytest.param(["--port", "8080"], [], ["--port", "8080"], id="runtime only"),
    pytest.param([], ["--x", "1"], ["--x", "1"], id="user only"),
    pytest.param(["--port", "8080", "--tp", "1"], ["--port", "9000"], ["--port", "9000", "--tp", "1"], id="user value wins in place"),
    pytest.param(["--port", "8080"], ["--port=9000"], ["--port=9000"], id="equals form replaces spaced form"),
    pytest.param(["--port=8080"], ["--port", "9000"], ["--port", "9000"], id="spaced form replaces equals form"),
    pytest.param(["--a", "1"], ["--trust-remote-code", "--b", "2"], ["--a", "1", "--trust-remote-code", "--b", "2"], id="user extras after"),
    pytest.param(["serve", "--a", "1"], ["other"], ["other", "--a", "1"], id="user positional replaces runtime positional"),
    pytest.param(["--a", "1"], ["extra"], ["--a", "1", "extra"], id="extra positional last"),
    pytest.param(["--offset", "-1"], [], ["--offset", "-1"], id="negative number is a value"),
    pytest.param(["--enforce-eager", "--a", "1"], ["--a", "2"], ["--enforce-eager", "--a", "2"], id="boolean flag kept"),
]


@pytest.mark.parametrize(("runtime", "user", "expected"), CASES)
def test_merge_args(runtime, user, expected):
    assert merge_args(runtime, user) == expected


@pytest.mark.parametrize(("runtime", "user", "expected"), CASES)
def test_merging_again_changes_nothing(runtime, user, expected):
    assert merge_args(runtime, merge_args(runtime, user)) == expected
