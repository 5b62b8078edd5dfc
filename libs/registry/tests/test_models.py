"""Pure parts of the registry: version numbering and the artifact checksum."""

from __future__ import annotations

from kestrel.registry.artifacts import checksum
from kestrel.registry.models import next_version


def test_the_next_version_is_one_more_than_the_largest_number():
    assert next_version([]) == "1"
    assert next_version(["1", "2", "10", "shadow-x"]) == "11"


def test_the_checksum_covers_names_and_bytes(tmp_path):
    (tmp_path / "a").write_bytes(b"1")
    (tmp_path / "b").write_bytes(b"2")
    first = checksum(tmp_path)
    (tmp_path / "b").rename(tmp_path / "c")
    assert checksum(tmp_path) != first  # same bytes under another name
    (tmp_path / "c").rename(tmp_path / "b")
    assert checksum(tmp_path) == first
