"""The policy language: the YAML loader that reports every problem with its position, rules,
scopes and exceptions, the AI-app catalogue and the model-serving providers.
"""

from ._catalog import App, Catalog, Vendor, load_catalog
from ._checker import read_yaml_file
from ._policy import ACTIONS, MATCH_KEYS, SETTINGS_KEYS, DlpCondition, Entry, Policy, Rule, load_policy
from ._providers import ModelCondition, ModelReader
from ._scope import Identity, PolicyException, Scope, TimeWindow

__all__ = [
    "ACTIONS",
    "App",
    "Catalog",
    "DlpCondition",
    "Entry",
    "Identity",
    "MATCH_KEYS",
    "ModelCondition",
    "ModelReader",
    "Policy",
    "PolicyException",
    "Rule",
    "SETTINGS_KEYS",
    "Scope",
    "TimeWindow",
    "Vendor",
    "load_catalog",
    "load_policy",
    "read_yaml_file",
]
