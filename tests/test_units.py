import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgekit.errors import UsageError
from edgekit.units import parse_dtype, parse_shape, parse_size


@pytest.mark.parametrize("text,expected", [
    ("256kB", 262144), ("256KB", 262144), ("256KiB", 262144), ("256k", 262144), ("256K", 262144),
    ("1MB", 1048576), ("1.5MiB", 1572864), ("1024", 1024), (" 2 kB ", 2048), ("0", 0), ("1G", 1 << 30),
])
def test_parse_size_accepts_datasheet_units(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "kB", "256 parsecs", "-1kB", "1.5", "1e3", "12 34", "0x10", "∞", "nan"])
def test_parse_size_rejects_with_the_value_in_the_message(text):
    with pytest.raises(UsageError) as e:
        parse_size(text)
    assert repr(text) in str(e.value) or text.strip() in str(e.value)


@given(st.text(max_size=20))
def test_parse_size_never_raises_anything_but_usage_error(text):
    try:
        n = parse_size(text)
    except UsageError:
        return
    assert isinstance(n, int) and n >= 0


@given(st.integers(0, 10**6), st.sampled_from(["k", "K", "kB", "KB", "KiB", "kib"]))
def test_every_k_spelling_is_1024(n, unit):
    assert parse_size(f"{n}{unit}") == n * 1024


def test_parse_shape():
    assert parse_shape("1,3,96,96") == (1, 3, 96, 96)
    assert parse_shape("1x3x64x64") == (1, 3, 64, 64)
    for bad in ["", "a,b", "1,0,3", "-1,3", "1,2,3,4,5,6,7"]:
        with pytest.raises(UsageError):
            parse_shape(bad)


def test_parse_dtype():
    assert parse_dtype("float32") == "fp32" and parse_dtype("INT8") == "int8"
    with pytest.raises(UsageError, match="int4"):
        parse_dtype("int4")
