"""Offline checks of the Terraform modules in iac/, on the HCL parsed by python-hcl2.

`terraform validate` needs the providers' schemas, which need registry downloads; these
checks need nothing and catch what a reviewer would: an undeclared or unused variable, a
variable without a type or description, an output without a description, a provider version
without an upper bound, a module call that passes an argument the module does not declare,
a README example that sets a variable that does not exist, a checkov skip without a reason.

Root modules are the directories directly under iac/ (oke, aks, gke); shared ones live under
iac/modules/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
from lark.exceptions import LarkError  # what python-hcl2 raises (it parses with lark)

MODULE_FILES = ("versions.tf", "variables.tf", "main.tf", "outputs.tf", "README.md")
TFVARS_MARKER = "# terraform.tfvars"
# Resource and data-source types whose provider is Terraform itself.
_BUILTIN_PREFIXES = {"terraform"}

_VAR_REF = re.compile(r"(?<![\w.])var\.([A-Za-z_][\w-]*)")
_LOCAL_REF = re.compile(r"(?<![\w.])local\.([A-Za-z_][\w-]*)")
_MODULE_REF = re.compile(r"(?<![\w.])module\.([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)")
_FENCED_HCL = re.compile(r"^```(?:hcl|terraform)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_SKIP_COMMENT = re.compile(r"#\s*checkov:skip=(\S*)")
_SKIP_ARGUMENT = re.compile(r"^(CKV2?_[A-Z0-9]+_\d+):(.*\S.*)$")
_CONSTRAINT = re.compile(r"^\s*(>=|<=|~>|!=|>|<|=)?\s*v?(\d+(?:\.\d+){0,2})(?:-[\w.]+)?\s*$")
# Terraform's own rule for a literal validation message: one sentence or more.
_PARSE_ERRORS = (LarkError, ValueError)
_SENTENCE = re.compile(r"^[A-Z].*[.?!]$", re.DOTALL)


@dataclass
class Module:
    """One directory of .tf files, parsed, with the raw text kept for comment checks."""

    directory: Path
    blocks: dict[str, list[tuple[Path, Any]]] = field(default_factory=dict)
    texts: dict[Path, str] = field(default_factory=dict)

    def all(self, kind: str) -> Iterator[tuple[Path, Any]]:
        yield from self.blocks.get(kind, [])

    def labelled(self, kind: str) -> Iterator[tuple[Path, str, dict[str, Any]]]:
        """(file, label, body) of each `kind "label" {…}` block."""
        for path, block in self.all(kind):
            for label, body in block.items():
                yield path, unquote(label), body

    def resources(self, kind: str = "resource") -> dict[tuple[str, str], dict[str, Any]]:
        """{(type, name): body} of every resource (or data source, with kind="data")."""
        return {
            (rtype, unquote(name)): body
            for _, rtype, by_name in self.labelled(kind)
            for name, body in by_name.items()
            if not name.startswith("__")
        }

    def variables(self) -> dict[str, dict[str, Any]]:
        return {name: body for _, name, body in self.labelled("variable")}

    def outputs(self) -> dict[str, dict[str, Any]]:
        return {name: body for _, name, body in self.labelled("output")}

    def locals(self) -> set[str]:
        return {key for _, block in self.all("locals") for key in block if not key.startswith("__")}


def unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals and wraps expressions in ${…}."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def is_literal_string(value: Any) -> bool:
    return isinstance(value, str) and value.startswith('"') and "${" not in value


def load(directory: Path) -> Module:
    module = Module(directory)
    for path in sorted(directory.glob("*.tf")):
        text = path.read_text()
        module.texts[path] = text
        try:
            parsed = hcl2.loads(text)
        except _PARSE_ERRORS as exc:
            raise ValueError(f"{path}: does not parse: {exc}") from exc
        for kind, blocks in parsed.items():
            module.blocks.setdefault(kind, []).extend((path, block) for block in blocks)
    return module


def _strings(node: Any, skip_keys: frozenset[str] = frozenset({"description"})) -> Iterator[str]:
    """Every string in a parsed body (expressions included), except documentation text."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            if key not in skip_keys:
                yield key
                yield from _strings(value, skip_keys)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item, skip_keys)


def _references(
    module: Module, pattern: re.Pattern[str], skip_kinds: frozenset[str] = frozenset()
) -> dict[tuple[str, ...], Path]:
    """Each reference matched by pattern (its groups), with the first file it occurs in."""
    found: dict[tuple[str, ...], Path] = {}
    for kind, blocks in module.blocks.items():
        if kind in skip_kinds:
            continue
        for path, block in blocks:
            for text in _strings({kind: block}):
                for match in pattern.finditer(text):
                    found.setdefault(match.groups(), path)
    return found


def bounded(constraint: str) -> bool:
    """True when a version constraint has both a lower and an upper bound."""
    lower = upper = False
    for clause in constraint.split(","):
        match = _CONSTRAINT.match(clause)
        if match is None:
            return False
        operator, version = match.group(1) or "=", match.group(2)
        if operator in ("=", "~>"):
            lower = True
            # `~> 1` allows every 1.x and later: only `~> 1.2` or `~> 1.2.3` caps the major.
            upper = upper or operator == "=" or version.count(".") >= 1
        elif operator in (">=", ">"):
            lower = True
        elif operator in ("<", "<="):
            upper = True
    return lower and upper


def _check_files(directory: Path) -> list[str]:
    return [f"{directory}: missing {name}" for name in MODULE_FILES if not (directory / name).is_file()]


def _check_variables(module: Module, root: bool) -> list[str]:
    problems = []
    validations = 0
    for path, name, body in module.labelled("variable"):
        where = f'{path}: variable "{name}"'
        if not str(unquote(body.get("description", ""))).strip():
            problems.append(f"{where} has no description")
        if "type" not in body:
            problems.append(f"{where} has no type")
        for validation in body.get("validation", []):
            validations += 1
            message = validation.get("error_message")
            if "condition" not in validation or message is None:
                problems.append(f"{where}: a validation block needs condition and error_message")
            elif is_literal_string(message) and not _SENTENCE.match(unquote(message)):
                problems.append(
                    f"{where}: error_message must be a sentence (capital letter first, full stop last)"
                )
    if root and validations == 0:
        problems.append(f"{module.directory}: no variable has a validation block")

    declared = module.variables()
    used = _references(module, _VAR_REF)
    problems += [
        f"{path}: var.{name} is used but not declared"
        for (name,), path in used.items()
        if name not in declared
    ]
    # A variable's own validation block does not count as a use.
    used_elsewhere = _references(module, _VAR_REF, skip_kinds=frozenset({"variable"}))
    problems += [
        f'{module.directory}: variable "{name}" is declared but never used'
        for name in declared
        if (name,) not in used_elsewhere
    ]
    locals_ = module.locals()
    problems += [
        f"{path}: local.{name} is used but not defined"
        for (name,), path in _references(module, _LOCAL_REF).items()
        if name not in locals_
    ]
    return problems


def _check_outputs(module: Module) -> list[str]:
    return [
        f'{path}: output "{name}" has no description'
        for path, name, body in module.labelled("output")
        if not str(unquote(body.get("description", ""))).strip()
    ]


def _check_versions(module: Module) -> list[str]:
    problems = []
    settings = [block for _, block in module.all("terraform")]
    if not settings:
        return [f"{module.directory}: no terraform {{}} block (required_version, required_providers)"]
    required_version = next(
        (unquote(b["required_version"]) for b in settings if "required_version" in b), None
    )
    if required_version is None or not bounded(required_version):
        problems.append(
            f"{module.directory}: required_version {required_version!r} must be bounded (>= x, < y)"
        )
    providers: dict[str, dict[str, Any]] = {}
    for block in settings:
        for group in block.get("required_providers", []):
            providers.update({name: spec for name, spec in group.items() if not name.startswith("__")})
    for name, spec in providers.items():
        version = unquote(spec.get("version", ""))
        if "source" not in spec:
            problems.append(f"{module.directory}: provider {name} has no source")
        if not version or not bounded(version):
            problems.append(
                f"{module.directory}: provider {name} version {version!r} must be bounded (>= x, < y)"
            )
    used_providers = {
        kind.split("_", 1)[0]
        for block_kind in ("resource", "data")
        for _, block in module.all(block_kind)
        for kind in map(unquote, block)
    } - _BUILTIN_PREFIXES
    problems += [
        f"{module.directory}: resources of provider {name!r} but no required_providers entry for it"
        for name in sorted(used_providers - providers.keys())
    ]
    return problems


def _check_module_calls(module: Module) -> list[str]:
    problems = []
    outputs_of: dict[str, set[str]] = {}
    for path, name, body in module.labelled("module"):
        source = unquote(body.get("source", ""))
        if not source.startswith(("./", "../")):
            continue
        child_dir = (module.directory / source).resolve()
        if not child_dir.is_dir():
            problems.append(f'{path}: module "{name}" source {source} does not exist')
            continue
        child = load(child_dir)
        variables = child.variables()
        outputs_of[name] = set(child.outputs())
        meta = {"source", "version", "count", "for_each", "providers", "depends_on"}
        arguments = {key for key in body if not key.startswith("__")} - meta
        problems += [
            f'{path}: module "{name}" has no variable "{arg}"' for arg in sorted(arguments - variables.keys())
        ]
        problems += [
            f'{path}: module "{name}" needs "{var}" (it has no default)'
            for var, spec in variables.items()
            if "default" not in spec and var not in arguments
        ]
    for (name, output), path in _references(module, _MODULE_REF).items():
        if name in outputs_of and output not in outputs_of[name]:
            problems.append(f'{path}: module "{name}" has no output "{output}"')
    return problems


def _check_skips(module: Module) -> list[str]:
    problems = []
    for path, text in module.texts.items():
        for number, line in enumerate(text.splitlines(), start=1):
            for match in _SKIP_COMMENT.finditer(line):
                if not _SKIP_ARGUMENT.match(match.group(1) + line[match.end() :]):
                    problems.append(f"{path}:{number}: a checkov skip needs `#checkov:skip=CKV_…:reason`")
    return problems


def readme_tfvars(readme: Path) -> str | None:
    """The README's example terraform.tfvars: a ```hcl block whose first line is the marker."""
    for match in _FENCED_HCL.finditer(readme.read_text()):
        if match.group(1).lstrip().startswith(TFVARS_MARKER):
            return match.group(1)
    return None


def _check_readme_example(module: Module) -> list[str]:
    readme = module.directory / "README.md"
    if not readme.is_file():
        return []
    example = readme_tfvars(readme)
    if example is None:
        return [f"{readme}: no example terraform.tfvars (a ```hcl block starting with `{TFVARS_MARKER}`)"]
    try:
        values = hcl2.loads(example)
    except _PARSE_ERRORS as exc:
        return [f"{readme}: the example terraform.tfvars does not parse: {exc}"]
    variables = module.variables()
    names = {name for name in values if not name.startswith("__")}
    problems = [
        f"{readme}: the example sets {name}, which is not a variable"
        for name in sorted(names - variables.keys())
    ]
    problems += [
        f"{readme}: the example leaves out {name}, which has no default"
        for name, spec in variables.items()
        if "default" not in spec and name not in names
    ]
    return problems


def check_module(directory: Path, *, root: bool) -> list[str]:
    """Every problem found in one module directory (empty when it is clean)."""
    problems = _check_files(directory)
    try:
        module = load(directory)
    except ValueError as exc:
        return [*problems, str(exc)]
    problems += _check_variables(module, root)
    problems += _check_outputs(module)
    problems += _check_versions(module)
    problems += _check_module_calls(module)
    problems += _check_skips(module)
    if root:
        problems += _check_readme_example(module)
    return problems


def modules(iac_dir: Path) -> list[tuple[Path, bool]]:
    """(directory, is_root) of every module under iac_dir."""
    found = []
    for directory in sorted({path.parent for path in iac_dir.rglob("*.tf")}):
        if ".terraform" in directory.parts:
            continue
        relative = directory.relative_to(iac_dir)
        found.append((directory, relative.parts[0] != "modules" and len(relative.parts) == 1))
    return found


def check_tree(iac_dir: Path) -> dict[Path, list[str]]:
    return {directory: check_module(directory, root=root) for directory, root in modules(iac_dir)}
