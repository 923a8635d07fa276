"""`./task image`'s decisions that need no engine: which mirror the offline base comes from,
what its key covers, which CA certificates of the machine it adds."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.delivery import image

pytestmark = pytest.mark.unit

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""


def _apt(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "sources.list.d").mkdir()
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_the_mirror_is_the_one_apt_uses_for_bookworm_main(tmp_path: Path) -> None:
    apt = _apt(tmp_path, {"sources.list.d/debian.sources": DEB822})
    assert image.apt_mirror(apt) == "http://mirror.example/debian"


def test_one_line_sources_count_too_and_other_suites_do_not(tmp_path: Path) -> None:
    apt = _apt(
        tmp_path,
        {
            "sources.list": "deb http://other.example/debian-security bookworm-security main\n"
            "# deb http://commented.example/debian bookworm main\n"
            "deb-src http://src.example/debian bookworm main\n",
            "sources.list.d/local.list": "deb [arch=amd64] http://one.example/debian bookworm main\n",
            # Renamed away from .sources: apt ignores it, so must we.
            "sources.list.d/debian.sources.disabled": DEB822,
        },
    )
    assert image.apt_mirror(apt) == "http://one.example/debian"


def test_without_a_debian_source_it_is_debians_own(tmp_path: Path) -> None:
    ubuntu = "deb http://archive.ubuntu.com/ubuntu noble main universe\n"
    assert image.apt_mirror(_apt(tmp_path, {"sources.list": ubuntu})) == image.DEFAULT_MIRROR


def test_the_base_key_follows_the_mirror_and_the_machines_certificates(tmp_path: Path) -> None:
    bundle = tmp_path / "ca-certificates.crt"
    bundle.write_text("one")
    key = image.base_key("http://a.example/debian", bundle)
    assert key == image.base_key("http://a.example/debian", bundle)
    assert key != image.base_key("http://b.example/debian", bundle)
    bundle.write_text("one and a proxy's")
    assert key != image.base_key("http://a.example/debian", bundle)


def _pem(body: str, width: int = 64) -> str:
    lines = [body[i : i + width] for i in range(0, len(body), width)]
    return "\n".join(["-----BEGIN CERTIFICATE-----", *lines, "-----END CERTIFICATE-----"])


def test_only_the_certificates_debian_lacks_are_added() -> None:
    debian, proxy = _pem("A" * 100), _pem("B" * 100)
    machine = f"{debian}\n{proxy}\n"
    # The same certificate wrapped at another width is still the same certificate.
    base = _pem("A" * 100, width=76) + "\n"
    assert image.machine_only_certificates(machine, base) == [proxy]
    assert image.machine_only_certificates(base, machine) == []
