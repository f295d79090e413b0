"""Configs: the Config dict, merge(), YAML loading and the class registry.

Importing this package is cheap: OmegaConf and PyYAML load only when a YAML
function is called.
"""

from ._config import Config
from .loader import load_config, to_yaml
from .merge import merge
from .registry import build, register

__all__ = ["Config", "build", "load_config", "merge", "register", "to_yaml"]
