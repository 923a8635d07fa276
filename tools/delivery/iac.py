"""`python -m tools.delivery.iac fmt|lint|checkov|validate` (`./task iac:check`, `iac:fmt`,
`iac:validate`): the checks of the Terraform modules in iac/.

`fmt` is `terraform fmt -check` (`--write` rewrites), `lint` the HCL checks of iaclint,
`checkov` checkov with a table per module; all three run offline. `validate` is `terraform init`
and `validate` of each root module, which needs the providers from the registry.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from devstack import progress, toolchain
from devstack.paths import REPO_ROOT
from tools.delivery import checkov, iaclint

IAC_DIR = REPO_ROOT / "iac"


def _terraform_env() -> dict[str, str]:
    env = {**os.environ, "CHECKPOINT_DISABLE": "1"}
    # A TF_CLI_CONFIG_FILE naming a missing file only prints a warning banner on every command.
    if env.get("TF_CLI_CONFIG_FILE") and not Path(env["TF_CLI_CONFIG_FILE"]).is_file():
        del env["TF_CLI_CONFIG_FILE"]
    return env


def cmd_fmt(args: argparse.Namespace) -> int:
    binary = toolchain.ensure(toolchain.TERRAFORM)
    version = toolchain.terraform_version(binary)
    progress.say(
        f"==> terraform fmt -check -recursive {args.dir} ({binary}, v{'.'.join(map(str, version or ()))})"
    )
    command = [str(binary), "fmt", "-recursive", *([] if args.write else ["-check", "-diff"]), str(args.dir)]
    result = subprocess.run(command, env=_terraform_env(), check=False)
    if result.returncode != 0 and not args.write:
        progress.say("Some files are not formatted: `./task iac:fmt` rewrites them.")
    return result.returncode


def cmd_lint(args: argparse.Namespace) -> int:
    results = iaclint.check_tree(args.dir)
    for directory, problems in results.items():
        status = "ok" if not problems else f"{len(problems)} problem(s)"
        shown = directory.relative_to(REPO_ROOT) if directory.is_relative_to(REPO_ROOT) else directory
        progress.say(f"    {shown}: {status}")
        for problem in problems:
            progress.say(f"      {problem}")
    if not results:
        progress.say(f"No Terraform modules under {args.dir}.")
        return 1
    return 1 if any(results.values()) else 0


def cmd_checkov(args: argparse.Namespace) -> int:
    names = [str(directory.relative_to(args.dir)) for directory, _ in iaclint.modules(args.dir)]
    summaries, errors = checkov.run(args.dir, names)
    return checkov.report(summaries, errors)


def cmd_validate(args: argparse.Namespace) -> int:
    binary = toolchain.ensure(toolchain.TERRAFORM)
    env = _terraform_env()
    failed = []
    for directory, root in iaclint.modules(args.dir):
        if not root:
            continue
        with progress.step(f"terraform init + validate in {directory}"):
            for command in (["init", "-backend=false", "-input=false"], ["validate"]):
                if subprocess.run(
                    [str(binary), f"-chdir={directory}", *command], env=env, check=False
                ).returncode:
                    failed.append(f"{directory}: terraform {command[0]} failed")
                    break
    for line in failed:
        progress.say(f"!! {line}")
    if failed:
        progress.say(
            "`terraform init` downloads the providers from registry.terraform.io (or a mirror named in "
            "TF_CLI_CONFIG_FILE); see iac/README.md."
        )
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.delivery.iac", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    fmt = sub.add_parser("fmt", help="terraform fmt -check over iac/ (--write to rewrite)")
    fmt.add_argument("--write", action="store_true", help="rewrite the files instead of checking")
    lint = sub.add_parser("lint", help="parse every module with python-hcl2 and check its declarations")
    ckv = sub.add_parser("checkov", help="checkov over iac/ with a per-module summary")
    validate = sub.add_parser(
        "validate", help="terraform init + validate each root module (needs the registry)"
    )
    for command, func in ((fmt, cmd_fmt), (lint, cmd_lint), (ckv, cmd_checkov), (validate, cmd_validate)):
        command.add_argument(
            "--dir", type=Path, default=IAC_DIR, help=f"modules directory (default {IAC_DIR})"
        )
        command.set_defaults(func=func)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
