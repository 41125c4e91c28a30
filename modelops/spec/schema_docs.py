"""Generate ``docs/spec.md``, the spec reference, from the JSON Schema.

Every field with its type, default, description and an example comes from
``schemas/modelops.schema.json`` (the single definition); the rules a schema cannot say
(environments, merge rules, units, limits) are written here once, next to the code that
enforces them, with numbers taken from that code. A test checks that the committed file
is what this module generates.

Example::

    $ python -m modelops.spec.schema_docs --write      # rewrite docs/spec.md (and schemas/team.schema.json)
    $ python -m modelops.spec.schema_docs --check      # exit 1 when docs/spec.md is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from modelops.components import naming
from modelops.ml import artifacts, package, table
from modelops.ml.estimators import SIZE_LIMITS
from modelops.spec import includes, loader, units
from modelops.spec.units import DURATION_METRICS, NUMBER_METRICS, PERCENT_METRICS
from modelops.spec.fast_schema import stale_validators
from modelops.spec.datafiles import CSV_TYPE_SAMPLE_ROWS, MAX_HEADER_BYTES, MAX_SAMPLE_BYTES
from modelops.spec.schema import DOCUMENT_KINDS, fast_definition, schema, team_schema, TEAM_SCHEMA_PATH

__all__ = ["DOC_PATH", "generate", "main", "team_schema_text"]

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "spec.md"

#: object definitions in the order a reader meets them, with the path they appear at
SECTIONS = (
    ("", "Top level", "modelops.yaml"),
    ("notification", "Notification channel", "notifications.<name>"),
    ("registry", "Registry", "registry"),
    ("dataset", "Dataset", "datasets.<name>"),
    ("retention", "Retention", "datasets.<name>.retention"),
    ("model", "Model", "models.<name>"),
    ("train", "Training", "models.<name>.train"),
    ("limits", "Training limits", "models.<name>.train.limits"),
    ("serving", "Serving", "models.<name>.serving"),
    ("autoscaling", "Autoscaling", "models.<name>.serving.autoscaling"),
    ("serverless", "Serverless", "models.<name>.serving.serverless"),
    ("canary", "Canary variant", "models.<name>.serving.canary"),
    ("shadow", "Shadow variant", "models.<name>.serving.shadow"),
    ("rollout", "Rollout: how a deploy shifts traffic", "models.<name>.serving.rollout"),
    ("data_capture", "Data capture", "models.<name>.serving.data_capture"),
    ("monitor", "Monitor", "monitors.<name>"),
)
VALUE_TYPES = ("name", "duration", "digest", "gate", "account")


def _code(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return "`" + text.replace("|", "\\|") + "`"


def _type(node: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in node:
        target = node["$ref"].rsplit("/", 1)[-1]
        if target in VALUE_TYPES:
            return f"[{target}](#{target})"
        title = next((title for key, title, _ in SECTIONS if key == target), target)
        return f"mapping ([{title.lower()}](#{_anchor(title)}))"
    if "const" in node:
        return _code(node["const"])
    if "enum" in node:
        return "one of " + ", ".join(_code(v) for v in node["enum"])
    kind = node.get("type")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        items = node.get("items", {})
        return f"list of {_type(items, defs)}" if items else "list"
    if kind == "object":
        values = node.get("additionalProperties")
        if isinstance(values, dict):
            names = node.get("propertyNames", {})
            key = "name" if names.get("$ref") else "key"
            if "enum" in names:
                key = "one of " + ", ".join(_code(v) for v in names["enum"])
            return f"mapping of {key} → {_type(values, defs)}"
        return "mapping"
    extra = []
    if "pattern" in node:
        extra.append(f"matching {_code(node['pattern'])}")
    for word, key in (("≥", "minimum"), ("≤", "maximum"), (">", "exclusiveMinimum"), ("<", "exclusiveMaximum")):
        if key in node:
            extra.append(f"{word} {node[key]}")
    if "minLength" in node or "maxLength" in node:
        extra.append(f"{node.get('minLength', 0)}-{node.get('maxLength', '∞')} characters")
    return f"{kind or 'any'}" + (f" ({', '.join(extra)})" if extra else "")


def _anchor(title: str) -> str:
    return title.lower().replace(" ", "-")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _object_section(key: str, title: str, where: str, defs: dict[str, Any]) -> list[str]:
    node = schema() if not key else defs[key]
    required = set(node.get("required", ()))
    lines = [f"### {title}", "", f"At `{where}`. {node.get('description', '')}".rstrip(), ""]
    lines += ["| key | type | default | description | example |", "| --- | --- | --- | --- | --- |"]
    for name, prop in node.get("properties", {}).items():
        target = defs.get(prop.get("$ref", "").rsplit("/", 1)[-1], {}) if "$ref" in prop else {}
        description = prop.get("description") or target.get("description", "")
        default = "**required**" if name in required else (_code(prop["default"]) if "default" in prop else (_code(target["default"]) if "default" in target else "unset"))
        examples = prop.get("examples") or target.get("examples") or []
        example = _code(examples[0]) if examples else ""
        lines.append(f"| `{name}` | {_cell(_type(prop, defs))} | {default} | {_cell(description)} | {_cell(example)} |")
    example = node.get("examples", [None])[0] if node.get("examples") else None
    if example is not None:
        lines += ["", "Example:", "", "```yaml", _yaml(example, where).rstrip(), "```"]
    return lines + [""]


def _yaml(example: Any, where: str) -> str:
    import yaml

    wrapped: Any = example
    for part in reversed(where.split(".")) if where != "modelops.yaml" else ():
        wrapped = {part.replace("<name>", "example"): wrapped}
    return yaml.safe_dump(wrapped, sort_keys=False, default_flow_style=False, allow_unicode=True)


STATIC_HEAD = """# The ModelOps spec

<!-- Generated by `python -m modelops.spec.schema_docs --write` from schemas/modelops.schema.json; do not edit by hand. -->

A project describes its datasets, models and monitors in one file, `modelops.yaml` (or
in a root spec and the team files it includes, see below); each environment adjusts it
with an overlay, `stacks/<env>.yaml`. The JSON Schema
`schemas/modelops.schema.json` is the single definition of this language (editors that
read the `# yaml-language-server: $schema=...` comment complete and check it as you type);
`modelops validate` checks the schema and every rule below, and reports all problems at
once, in file order, as `FILE:LINE:COL: path: message; fix`.

```yaml
# yaml-language-server: $schema=schemas/modelops.schema.json
apiVersion: modelops/v1
project: churn
owner: ml-platform@example.com
region: eu-west-1
notifications:
  oncall: {{email: [ml-oncall@example.com]}}
datasets:
  customers: {{source: data/customers.csv}}
models:
  churn-classifier:
    dataset: customers
    train: {{estimator: sklearn.ensemble.RandomForestClassifier, target: churned}}
monitors:
  churn-latency: {{model: churn-classifier, metric: latency_p99, above: 250ms}}
```

## Environments and overlays

* Every `stacks/<env>.yaml` beside the spec is one environment, named after the file
  (`Pulumi.<env>.yaml` files are Pulumi stack configurations, not overlays). Without a
  `stacks/` directory, or without any overlay in it, there is one environment, `dev`,
  with no overlay. `--env` with another name is a usage error that lists the available
  environments.
* An environment name is 2-10 lowercase letters and digits, starting with a letter
  (`{env_pattern}`).
* An overlay is deep-merged on the base spec: **mappings merge key by key; scalars and
  lists replace** the base's value. An overlay cannot delete a key.
* An overlay is validated with the same schema with every `required` removed, then the
  merged result is validated like a spec.
* An overlay adjusts what the base declares: a notification, dataset, model or monitor
  name it sets that the base does not declare is an error naming both files, so that a
  typo never creates a second model:
  `stacks/prod.yaml:3:3: models.churn-clasifier: not declared in modelops.yaml; did you mean 'churn-classifier'?`
* An empty overlay (or `{{}}`) is the base as it is.
* `modelops show --env <env>` prints an environment resolved (overlay merged, every
  default filled in) in this language: the keys and units of this page, paths relative to
  the spec. It is itself a valid spec; the monitors `default_monitors` adds follow as
  comments. `show --json` is the same document as JSON.
* A problem is reported once, where it is caused: a mistake of the base at the base (not
  again in each overlay that touches the entry), and a setting an overlay adds that clashes
  with one of the base (`above` over a base's `below`, `serverless` over an
  `instance_type`) at the overlay, naming the base's line. An overlay cannot remove a key,
  so such a base key has to move into the overlays that keep it.
* An environment's `region` (the base's, or the one its overlay sets) is the region its
  stack deploys to: each `stacks/Pulumi.<stack>.yaml` that deploys it (its
  `modelops:environment`, default the stack name) and sets `aws:region` must set the same
  region, or validation names both files: image URIs and ARNs are built for the spec's
  region, resources are created in the stack's.
* Every text value and key is printable characters with no white space at either end:
  a NUL or other control character, a final line break (what a YAML `|` or `>` block
  keeps; write `|-` or `>-`) or a leading space is an error. A `pattern` matches the
  whole value, as JSON Schema defines it: its `$` is the end of the text, never the
  place before a final line break.
* Paths in the spec (`source`, `artifact`) are relative to the directory of
  `modelops.yaml`, also when an overlay or an included team file sets them. They must stay inside that directory
  (the project) after symlinks are followed, and name a regular file: an absolute path,
  `../` out of the project, a symlink pointing out of it, a directory, pipe or device is
  an error (`E-FILE-OUTSIDE`, `E-NOT-A-FILE`), so a spec under review never makes
  `validate`, `build` or `up` read or upload a file of the machine it runs on. The same
  holds for the overlays in `stacks/`. A message quotes at most 40 characters of what a
  file holds, escaped.

## A spec in several files

* The root spec may `include:` team files, each a path or a glob pattern relative to its
  directory: `include: [teams/*.yaml]`. A team file holds what one team declares:
  `owner`, `notifications`, `datasets`, `models`, `monitors` (and, optionally,
  `apiVersion`); its schema is `schemas/team.schema.json`, generated from the spec's, for
  editors: `# yaml-language-server: $schema=../schemas/team.schema.json` (the path is
  relative to the team file). A key only the root spec sets (`project`, `region`,
  `include`, ...) in a team file is an error (`E-TEAM-KEY`). Only the root spec includes;
  an overlay cannot (`E-OVERLAY-INCLUDE`).
* Each entity has an owner: its own `owner`, else the `owner` of the team file that
  declares it, else the project's `owner`; a default monitor has its model's. `modelops
  owners` lists them, and `modelops owners --check .github/CODEOWNERS` exits 3 when
  CODEOWNERS does not route a team file or an overlay to its owner (docs/teams.md).
* Names are unique across all files: a second declaration of a notification, dataset,
  model or monitor is an error at its place naming the first one's
  (`teams/b.yaml:4:3: models.scorer: model 'scorer' is already declared at
  teams/a.yaml:3:3`). References cross files freely; paths in a team file (`source`,
  `artifact`) are relative to the root spec's directory, like every path of the spec.
* Files are read in order: the root spec, then each `include` entry in turn, the files a
  pattern matches in name order; a file named twice is read once, and the root spec
  matched by a pattern is skipped. Problems point at the file that holds them.
* An included file obeys the rules of the files a spec names: relative, no `..`, inside
  the project after symlinks, a regular file, not one of `stacks/` (`E-INCLUDE-OUTSIDE`,
  `E-NOT-A-FILE`, `E-INCLUDE-OVERLAY`). A pattern matches within one directory level per
  `/` (`*`, `?`, `[abc]`; `**` is refused). A pattern that matches no file, or a path
  that does not exist, is an error (`E-INCLUDE-MISSING`): the models of a team file that
  went missing would otherwise be deleted. At most {max_included} files are included, and
  the root spec and its included files are at most {max_total:,} bytes in all; each file
  has the limits of a spec file below.
* The overlays stay one per environment and adjust anything of any file.
* `show` prints the resolved environment as one file, every entity with its `owner`.

## Rules beyond the schema

* Names are unique across datasets, models and monitors (and across the files of the
  spec), and are not reserved ({reserved}).
* References resolve: a model's `dataset`, a monitor's `model` or `dataset`, and every
  channel in `notify`.
* A model has exactly one of `train` and `artifact`; `source` and `artifact` files exist.
* `instance_type` is one the SageMaker API accepts for a real-time endpoint
  (`modelops/data/serving_instance_types.json`, from botocore's SageMaker model; the same
  list for every region, so a type a region does not offer is still refused by AWS).
* A trained model's `train.target` and `train.features` are columns of its dataset's CSV
  header (when the dataset has a CSV `source`); a typo is reported at its position with
  the closest column.
* A model's `train.estimator` is a scikit-learn classifier or regressor that its plain
  `params` can build (not `Pipeline`, `ColumnTransformer`, `FrozenEstimator`, a search or
  a meta-estimator that needs estimator objects: ModelOps builds the feature pipeline
  itself), and every key of `params` is a parameter of it.
* Parameters that size a model are bounded, so that a typo cannot train until the build
  machine runs out of memory or time; a model raises its own bound with `train.limits`
  (e.g. `limits: {{n_estimators: 20000}}`), and a build that runs out of memory all the
  same stops with exit 1, naming the model:
{size_limits}
* Autoscaling `min` ≤ `max`, and an explicit `instance_count` lies within them (unset, it
  starts at `min`).
* `serverless` excludes an explicit `instance_type`, `instance_count`, `autoscaling`,
  `canary` and `shadow`. Serverless endpoints cannot capture data: `data_capture.enabled:
  true` with `serverless` is an error, capture is off for serverless models, and a
  `data_drift` monitor on a serverless model (or one whose capture is disabled) is an error.
* A monitor has exactly one of `model` and `dataset`, and exactly one of `above` and
  `below`; its metric applies to its target (models: {model_metrics}; datasets:
  {dataset_metrics}).
* Thresholds are written in the metric's unit:

  | metrics | unit | examples |
  | --- | --- | --- |
  | {durations} | a duration | `250ms`, `1.5s`, `48h` |
  | {percents} | a percentage (a ratio once parsed: `2%` is 0.02) | `2%`, `80%` |
  | {numbers} | a plain number ≥ 0 (a count, or the drift PSI) | `1`, `0.2` |

  `below` applies only to `invocations` (a traffic floor).
* `period` is a whole number of minutes, from `1m` to `1d`; `for` is a whole multiple of
  `period`. CloudWatch evaluates an alarm over at most {max_alarm} seconds (`7d`), and over
  at most 86400 seconds (`1d`) when its period is under `1h`: `for` stays within that.
* A `freshness` monitor alarms after `above` without a write has lasted `for`: its alarm
  counts (above + for - period) / period periods in a row without a write (`above: 26h`,
  `period: 1h`, `for: 1h` is 26 periods; `for: 1d` is 49). `above` is a whole number of
  periods, and that window stays within CloudWatch's limits above (a freshness of more than
  a day needs a period of `1h` or more). Unset, a freshness monitor's `period` is `1h` and
  its `for` one period: it alarms once `above` has passed without a write.
* Every AWS name derived for every environment fits its limit ({limits}).
* With `default_monitors` (the default), each model gets `<model>-latency-p99` (latency_p99
  above `1s`, period `1m`, for `5m`) and `<model>-error-rate` (error_rate above `1%`,
  `1m`/`5m`), notifying every channel; each is skipped when a monitor of the same metric is
  declared on that model or the name is taken. A monitor without `notify` notifies every
  channel.

## Limits of a spec file

| limit | value |
| --- | --- |
| file size | {max_bytes:,} bytes |
| nesting depth | {max_depth} levels |
| nodes after expanding aliases | {max_nodes:,} |
| nodes produced by aliases (alias bombs) | {max_alias_nodes:,} |
| encoding | UTF-8 (a byte-order mark is allowed), no control characters |
| documents | exactly one; not empty; the top level is a mapping |
| keys | unique in each mapping (a duplicate is an error, not "last one wins"); one `<<` per mapping (merge several anchors with `<<: [*a, *b]`, the first winning) |
| YAML tags | none beyond the core types (`!!python/...`, `!!binary`, ... are errors); anchors, aliases and `<<` merges work |

Dates (`2024-01-31`) are read as text.

## Limits of the files a spec names

Each file is read at most this far; the error names the limit that was hit.

| read | limit |
| --- | --- |
| a CSV source's header line (`validate`: column names, `train.target`/`features` checks) | {max_header:,} bytes (`E-CSV-HEADER`) |
| a CSV source's sample, header included (`validate`, catalogue column types) | {max_sample:,} bytes and {sample_rows:,} rows |
| a data file `modelops build` trains on | {max_table:,} bytes |
| a prebuilt `artifact:` package | {max_package:,} bytes |
| one JSON member of a package (`card.json`, `baseline.json`) | {max_member:,} bytes inflated |
| all members of a package, walked to find one | {max_inflated:,} bytes inflated, {max_members:,} members |

A data file is read once per process while it is unchanged (same size, modification time
and inode), however many environments and datasets name it, and once across runs: what
`validate` takes of a CSV (its header and column types) is kept as JSON under
`.modelops/cache/datafiles/` once the spec validated. It is kept by the file's path, size,
modification time and inode (as git keeps its index), so the next `validate` of an
unchanged file does not read it; and by the digest of the bounded prefix it was taken from,
so a fresh checkout of the same files (a CI runner restoring main's cache, the base of a
`diff`) reads each prefix but types nothing. A file written in the last two seconds is kept
by content only (a second write within the clock's granularity could leave size and time
unchanged); an invalid spec leaves nothing. Deleting `.modelops/cache` is always safe.

## Reference
"""


def generate() -> str:
    """The full text of ``docs/spec.md``."""
    definition = schema()
    defs = definition["$defs"]
    head = STATIC_HEAD.format(
        env_pattern=naming.ENV_PATTERN.pattern,
        reserved=", ".join(f"`{n}`" for n in sorted(naming.RESERVED_NAMES)),
        model_metrics=", ".join(f"`{m}`" for m in definition["$defs"]["monitor"]["properties"]["metric"]["enum"] if m != "freshness"),
        dataset_metrics="`freshness`",
        durations=", ".join(f"`{m}`" for m in sorted(DURATION_METRICS)),
        percents=", ".join(f"`{m}`" for m in sorted(PERCENT_METRICS)),
        numbers=", ".join(f"`{m}`" for m in sorted(NUMBER_METRICS)),
        max_alarm=units.MAX_ALARM_SECONDS,
        size_limits="\n".join(f"  * `{name}` ≤ {limit:,} ({counts})" for name, (limit, counts) in SIZE_LIMITS.items()),
        limits=", ".join(f"{k} {v}" for k, v in naming.LIMITS.items()),
        max_bytes=loader.MAX_BYTES,
        max_depth=loader.MAX_DEPTH,
        max_nodes=loader.MAX_NODES,
        max_alias_nodes=loader.MAX_ALIAS_NODES,
        max_header=MAX_HEADER_BYTES,
        max_sample=MAX_SAMPLE_BYTES,
        sample_rows=CSV_TYPE_SAMPLE_ROWS,
        max_table=table.MAX_TABLE_BYTES,
        max_package=artifacts.MAX_PACKAGE_BYTES,
        max_member=package.MAX_MEMBER_BYTES,
        max_inflated=package.MAX_INFLATED_BYTES,
        max_members=package.MAX_MEMBERS,
        max_included=includes.MAX_INCLUDED_FILES,
        max_total=includes.MAX_TOTAL_BYTES,
    )
    lines = [head]
    for key, title, where in SECTIONS:
        lines += _object_section(key, title, where, defs)
    lines += ["## Value types", ""]
    for key in VALUE_TYPES:
        node = defs[key]
        lines += [f"### {key}", "", f"{node.get('description', '')} Type: {_type({k: v for k, v in node.items() if k != 'description'}, defs)}."]
        if node.get("examples"):
            lines += ["", "Examples: " + ", ".join(_code(e) for e in node["examples"]) + "."]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def team_schema_text() -> str:
    """``schemas/team.schema.json`` as generated from the spec's schema (for editors)."""
    return json.dumps(team_schema(schema()), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {DOC_PATH.name}")
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed file is stale")
    args = parser.parse_args(argv)
    text = generate()
    definitions = {kind: fast_definition(kind) for kind in DOCUMENT_KINDS}
    team = team_schema_text()
    if args.write:
        DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
        DOC_PATH.write_text(text, encoding="utf-8")
        TEAM_SCHEMA_PATH.write_text(team, encoding="utf-8")
        stale_validators(definitions, write=True)
        return 0
    if args.check:
        current = DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.exists() else ""
        current_team = TEAM_SCHEMA_PATH.read_text(encoding="utf-8") if TEAM_SCHEMA_PATH.exists() else ""
        stale = ([str(DOC_PATH)] * (current != text) + [str(TEAM_SCHEMA_PATH)] * (current_team != team)
                 + [p.name for p in stale_validators(definitions)])
        if stale:
            print(f"{', '.join(stale)} out of date: run python -m modelops.spec.schema_docs --write", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
