"""The Lambda functions' logs against what operators rely on (issue 14, operations).

    metrics-check.py TEMPLATE STACK_NAME LOG...

Reads the logs of `cargo lambda watch` (the functions' standard output, with
cargo lambda's own text lines in between) and checks:
- at INFO, a function writes nothing but its request lines (and audit lines, which
  carry no level): one JSON object per request with request_id, route, status,
  latency_ms and cold_start;
- every request line is a valid CloudWatch Embedded Metric Format document in the
  namespace template.yaml gives the functions (LTI_METRICS_NAMESPACE, with
  ${AWS::StackName} = STACK_NAME): each metric a number or a list of at most 100,
  each dimension a non-empty ASCII string of at most 1,024 characters;
- every alarm of template.yaml on that namespace reads a metric the functions did
  emit, with the same dimensions (an alarm on a metric nobody writes never fires);
- all four functions logged requests, and the launch function counted launches by
  outcome, at least one of them OK.
Prints what it counted; exits non-zero with the reasons otherwise.
"""
import json
import sys
from collections import Counter

from samtranslator.yaml_helper import yaml_parse

REQUIRED_FIELDS = ("request_id", "route", "status", "latency_ms", "cold_start")


def sub_value(value, stack):
    """A `!Sub` string with ${AWS::StackName} replaced; plain strings as they are."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        return value["Fn::Sub"].replace("${AWS::StackName}", stack)
    return value


def main() -> int:
    template_path, stack, logs = sys.argv[1], sys.argv[2], sys.argv[3:]
    with open(template_path) as f:
        template = yaml_parse(f.read())
    namespace = sub_value(
        template["Globals"]["Function"]["Environment"]["Variables"]["LTI_METRICS_NAMESPACE"],
        stack,
    )
    problems = []
    emitted = set()  # (metric name, frozenset of dimension keys)
    per_function = Counter()
    outcomes = Counter()
    info_other = 0
    for path in logs:
        with open(path, errors="replace") as f:
            for number, raw in enumerate(f, 1):
                raw = raw.strip()
                if not raw.startswith("{"):
                    continue  # cargo lambda's own lines
                try:
                    line = json.loads(raw)
                except json.JSONDecodeError:
                    problems.append(f"{path}:{number}: a line that starts like JSON is not JSON")
                    continue
                where = f"{path}:{number}"
                if line.get("log") == "audit":
                    continue
                if line.get("message") != "request":
                    if line.get("level") == "INFO":
                        info_other += 1
                        problems.append(f"{where}: an INFO line that is not a request line: {line.get('message')!r}")
                    continue
                for field in REQUIRED_FIELDS:
                    if field not in line:
                        problems.append(f"{where}: request line without {field}")
                if line.get("level") != ("ERROR" if line.get("status", 0) >= 500 else "INFO"):
                    problems.append(f"{where}: level {line.get('level')} for status {line.get('status')}")
                per_function[line.get("function")] += 1
                if "Outcome" in line:
                    outcomes[line["Outcome"]] += 1
                aws = line.get("_aws")
                if not isinstance(aws, dict) or not isinstance(aws.get("Timestamp"), int):
                    problems.append(f"{where}: request line without an EMF _aws.Timestamp")
                    continue
                for directive in aws.get("CloudWatchMetrics", []):
                    if directive.get("Namespace") != namespace:
                        problems.append(f"{where}: namespace {directive.get('Namespace')!r}, not {namespace!r}")
                    for dimension_set in directive.get("Dimensions", []):
                        for key in dimension_set:
                            value = line.get(key)
                            if not (isinstance(value, str) and 0 < len(value) <= 1024 and value.isascii()):
                                problems.append(f"{where}: dimension {key} = {value!r}")
                    for metric in directive.get("Metrics", []):
                        value = line.get(metric.get("Name"))
                        numbers = value if isinstance(value, list) else [value]
                        if not (0 < len(numbers) <= 100 and all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers)):
                            problems.append(f"{where}: metric {metric.get('Name')} = {value!r}")
                        for dimension_set in directive.get("Dimensions", []):
                            emitted.add((metric.get("Name"), frozenset(dimension_set)))

    for function in ("login", "launch", "jwks", "services"):
        if per_function[function] == 0:
            problems.append(f"no request line from the {function} function")
    if outcomes["OK"] == 0:
        problems.append("no launch counted with Outcome OK")

    alarms = 0
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        properties = resource["Properties"]
        if "Metrics" in properties:
            # Metric math on AWS/ApiGateway (the 5xx rate): API Gateway's own metrics.
            for query in properties["Metrics"]:
                stat = query.get("MetricStat")
                if stat and stat["Metric"]["Namespace"] != "AWS/ApiGateway":
                    problems.append(f"alarm {name}: math over {stat['Metric']['Namespace']}, expected AWS/ApiGateway")
            continue
        if sub_value(properties["Namespace"], stack) != namespace:
            problems.append(f"alarm {name}: namespace differs from the functions' LTI_METRICS_NAMESPACE")
            continue
        dimensions = frozenset(d["Name"] for d in properties.get("Dimensions", []))
        if (properties["MetricName"], dimensions) not in emitted:
            problems.append(
                f"alarm {name}: no request line emitted {properties['MetricName']} with dimensions {sorted(dimensions)}"
            )
        alarms += 1

    print(
        f"request lines: {sum(per_function.values())} ({', '.join(f'{k} {v}' for k, v in sorted(per_function.items()))}); "
        f"launch outcomes: {dict(outcomes)}; metrics emitted: {len(emitted)} (name, dimensions) pairs; "
        f"alarms on the functions' metrics checked: {alarms}; other INFO lines: {info_other}"
    )
    if problems:
        print(f"{len(problems)} problem(s):")
        for problem in problems[:50]:
            print(f"  {problem}")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
