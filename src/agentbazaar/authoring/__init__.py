"""Contracts from a sentence: a fixed template, filled, checked, simulated, deployed, verified.

    from agentbazaar.authoring import TEMPLATES, draft, deploy, verify_address, explain

The deterministic parsers read the sentence first; a local language model (``ModelFiller``)
chooses and fills only what they cannot read, and its answer is checked against the sentence.
Neither ever writes code. Before anything is signed: compile, static rules, the template's properties under
hypothesis against the compiled bytecode with the filled parameters, and the sentence's own
scenario on a copy of the chain. Deployment and funding are ``Wallet.spend``s; the deployed code
is verified against a rebuild from the content-addressed record.

Layer: above ``wallet`` (it spends) beside ``intents``; below ``cli``.
"""

from agentbazaar.authoring.checks import CheckResult, compile_check, property_checks, static_check
from agentbazaar.authoring.explain import explain
from agentbazaar.authoring.extract import (
    Chooser,
    Filled,
    Filler,
    choose,
    closest_templates,
    fill,
)
from agentbazaar.authoring.modelfill import ModelFiller
from agentbazaar.authoring.params import Kind, Param, ResolveContext, json_schema, resolve
from agentbazaar.authoring.pipeline import (
    Authored,
    Draft,
    Namer,
    assess,
    deploy,
    draft,
    simulate,
)
from agentbazaar.authoring.records import RecordStore
from agentbazaar.authoring.sandbox import Sandbox
from agentbazaar.authoring.template import Property, Run, Step, Template
from agentbazaar.authoring.templates import TEMPLATES
from agentbazaar.authoring.verify import Verification, verify_address, verify_record

__all__ = [
    "TEMPLATES",
    "Authored",
    "CheckResult",
    "Chooser",
    "Draft",
    "Filled",
    "Filler",
    "Kind",
    "ModelFiller",
    "Namer",
    "Param",
    "Property",
    "RecordStore",
    "ResolveContext",
    "Run",
    "Sandbox",
    "Step",
    "Template",
    "Verification",
    "assess",
    "choose",
    "closest_templates",
    "compile_check",
    "deploy",
    "draft",
    "explain",
    "fill",
    "json_schema",
    "property_checks",
    "resolve",
    "simulate",
    "static_check",
    "verify_address",
    "verify_record",
]
