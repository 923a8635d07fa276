"""The image tier (`./task test:image`): the image `./task image` built, started as its roles
against a scratch PostgreSQL (tests/image/support.py says how they run)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack import postgres
from tests.image.support import Containers
from tools.delivery import image


@pytest.fixture(scope="session")
def built_image() -> str:
    if not image.image_exists(image.IMAGE):
        pytest.fail(
            f"No image {image.IMAGE} (or no engine): `./task image` builds it, `./task test:image` too."
        )
    return image.IMAGE


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with postgres.scratch("todo-image-") as port:
        yield postgres.url(port)


@pytest.fixture
def containers(built_image: str, database_url: str) -> Iterator[Containers]:
    running = Containers(built_image, database_url)
    yield running
    running.remove_all()
