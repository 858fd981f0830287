import os

import pytest

import fhirtest


def pytest_collection_modifyitems(config, items):
    # Without a server there is nothing to test against: skip with the reason rather than error.
    if not os.environ.get("CADUCEUS_BASE_URL"):
        skip = pytest.mark.skip(reason="set CADUCEUS_BASE_URL (Scripts/blackbox.sh does)")
        for item in items:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def base():
    return fhirtest.base_url()


@pytest.fixture
def http():
    """A requests session that validates every response body as FHIR."""
    with fhirtest.validating_session() as s:
        yield s
