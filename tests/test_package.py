"""The package as its users meet it: the versions it claims, and a README
written for people outside this project."""

import configparser
from importlib import metadata

from packaging.requirements import Requirement

from tests.conftest import REPO


def _requirements():
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    lines = config["options"]["install_requires"].splitlines()
    return {r.name: r for r in map(Requirement, (l for l in lines if l.strip()))}


def test_setup_cfg_states_the_versions_tested_here():
    requirements = _requirements()
    for name in ("tensorflow", "keras"):
        specifier = requirements[name].specifier
        assert any(spec.operator == "<" for spec in specifier), (
            f"{name} needs an upper bound: the code relies on its internals")
        assert metadata.version(name) in specifier, (
            f"setup.cfg allows {name}{specifier}, but the tests run {metadata.version(name)}")


def test_contributing_maps_every_module_and_subpackage_and_the_readme_no_project_path():
    readme = (REPO / "README.md").read_text()
    assert "../shared" not in readme  # users have MNIST_data/, not this project's files
    layout = (REPO / "CONTRIBUTING.md").read_text()
    package = REPO / "keras_vae"
    entries = sorted(p.name for p in package.glob("*.py") if p.name not in (
        "__init__.py", "__main__.py", "version.py"))
    entries += sorted(f"{p.name}/" for p in package.iterdir() if (p / "__init__.py").is_file())
    missing = [name for name in entries if f"  {name}" not in layout]
    assert not missing, f"CONTRIBUTING.md's layout lacks {missing}"
    assert "keras-vae download --data-dir MNIST_data" in readme  # how to get the files
    assert (REPO / "CHANGELOG.md").is_file()
