import pytest

from largestyle.network.vgg import VGG19Features
from largestyle.network.weights import randomise


@pytest.fixture(autouse=True)
def no_trained_weights(tmp_path_factory, monkeypatch):
    """Tests see only the weights they make, and nothing is downloaded."""
    empty = tmp_path_factory.mktemp("no-weights")
    monkeypatch.setenv("LARGESTYLE_WEIGHTS_DIR", str(empty))
    monkeypatch.setenv("TORCH_HOME", str(empty))
    monkeypatch.setenv("LARGESTYLE_NO_FETCH", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def network():
    """A float64 random VGG-19 to relu5_1, for exactness tests."""
    net = VGG19Features("relu5_1").double()
    randomise(net)
    return net
