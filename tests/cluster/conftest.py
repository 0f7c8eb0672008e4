import pytest

from synod_harness import Cluster


@pytest.fixture
def cluster():
    c = Cluster(3)
    c.start()
    yield c
    c.stop()
