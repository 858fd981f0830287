import os
import tempfile

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


@pytest.fixture
def database():
    """The database a test's own servers use: the suite's PostgreSQL one (tests keep ids of their
    own there), or a fresh SQLite file."""
    if "CADUCEUS_BIN" not in os.environ or "CADUCEUS_DATABASE" not in os.environ:
        pytest.skip("set CADUCEUS_BIN and CADUCEUS_DATABASE (Scripts/blackbox.sh does)")
    configured = os.environ["CADUCEUS_DATABASE"]
    if configured.startswith("postgres"):
        yield configured
    else:
        with tempfile.TemporaryDirectory() as directory:
            yield os.path.join(directory, "own.sqlite")
