"""The notification config file: YAML in, typed and validated receivers out.

Checked against the rules it serves (severity names, rule names), and refused as a whole, with
every problem and its line, like the rules file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Set
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from sereno.errors import RefusedFile
from sereno.notify.maintenance import MaintenanceWindow
from sereno.notify.matchers import Matcher, MatcherError, parse_matcher
from sereno.notify.redact import shown_url
from sereno.notify.silences import matchers_problem
from sereno.notify.timeintervals import TimeInterval, TimeIntervalReader
from sereno.rules.rulefmt import RuleSet, format_duration, parse_duration
from sereno.rules.yamlnodes import BOOL, FLOAT, INT, STR, NodeReader, compose, kind_name, read_text


class ConfigError(RefusedFile):
    """A notification config file that cannot be used (with the rules it is for)."""

    what = "config file"


RECEIVER_TYPES = ("webhook", "alertmanager", "slack", "email")
_TIMING_KEYS = (
    "repeat_interval",
    "timeout",
    "retry_backoff",
    "retry_backoff_max",
    "give_up_after",
)
_FILTER_KEYS = ("min_severity", "rules", "services")
_QUIET_KEYS = ("active_time_intervals", "mute_time_intervals")
_GROUP_KEYS = ("group_by", "group_wait", "group_interval")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_WINDOW_REQUIRED = ("name", "matchers", "time_intervals")
_WINDOW_KEYS = (*_WINDOW_REQUIRED, "comment")
_TYPE_KEYS: Mapping[str, tuple[str, ...]] = {
    "webhook": ("url", "headers"),
    "alertmanager": ("url", "resend_interval"),
    "slack": ("url", "channel"),
    "email": ("smarthost", "from", "to", "starttls", "username", "password_file", "ca_file"),
}
_REQUIRED: Mapping[str, tuple[str, ...]] = {
    "webhook": ("url",),
    "alertmanager": ("url",),
    "slack": ("url",),
    "email": ("smarthost", "from", "to"),
}
_MILLISECONDS = re.compile(r"^(\d+)ms$")


@dataclass(frozen=True)
class Timing:
    """When a receiver is told again, and how hard delivery tries (seconds)."""

    repeat_interval: float = 4 * 3600.0  # re-notify an alert still firing this often
    timeout: float = 10.0  # for one attempt
    retry_backoff: float = 1.0  # the first wait after a failed attempt, doubled each time
    retry_backoff_max: float = 300.0
    give_up_after: float = 24 * 3600.0  # a notification this old is dropped, not sent


@dataclass(frozen=True)
class Grouping:
    """How a receiver groups alerts: by these labels (`...`: every alert alone), the first
    message of a group `wait` seconds after its first alert, the next ones at most every
    `interval` seconds."""

    by: tuple[str, ...]
    wait: float = 30.0
    interval: float = 300.0


@dataclass(frozen=True)
class EmailSettings:
    smarthost: tuple[str, int]
    sender: str
    to: tuple[str, ...]
    starttls: bool = True
    username: str | None = None
    password_file: str | None = None
    ca_file: str | None = None

    def password(self) -> str | None:
        """Read when sending, so a rotated secret needs no restart."""
        if self.password_file is None:
            return None
        return Path(self.password_file).read_text(encoding="utf-8").strip()


@dataclass(frozen=True)
class ReceiverSpec:
    """One receiver: where notifications go, which ones, and how hard to try."""

    name: str
    type: str
    url: str = field(default="", repr=False)  # may carry credentials: see `shown_url`
    min_severity: str | None = None
    rules: frozenset[str] | None = None  # only these rules' alerts (None: all)
    services: frozenset[str] | None = None
    timing: Timing = field(default_factory=Timing)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # credentials, too
    channel: str | None = None
    resend_interval: float = 60.0  # Alertmanager forgets alerts not re-sent in resolve_timeout
    email: EmailSettings | None = None
    active_time_intervals: tuple[TimeInterval, ...] = ()  # if any: told only during these
    mute_time_intervals: tuple[TimeInterval, ...] = ()  # never told during these
    grouping: Grouping | None = None  # None: one message per alert change

    @property
    def shown_url(self) -> str:
        """The URL as it may be shown, its credentials hidden."""
        return shown_url(self.url, secret_path=self.type == "slack")


@dataclass(frozen=True)
class NotifyConfig:
    source: str
    receivers: tuple[ReceiverSpec, ...] = ()
    external_url: str = ""  # where people reach this Sereno, linked from notifications
    time_intervals: tuple[TimeInterval, ...] = ()
    maintenance_windows: tuple[MaintenanceWindow, ...] = ()

    def receiver(self, name: str) -> ReceiverSpec | None:
        return next((spec for spec in self.receivers if spec.name == name), None)


WEBHOOK_SHORTCUT = "webhook"


@dataclass(frozen=True)
class WebhookOption:
    """The URL of `--webhook URL`, `--webhook-file FILE` or `SERENO_WEBHOOK_URL`, and which
    of them gave it (`given_by`, for messages)."""

    url: str = field(repr=False)
    given_by: str = "--webhook"


def receivers_config(
    path: str | None, webhook: WebhookOption | None, ruleset: RuleSet
) -> NotifyConfig:
    """The receivers of `--config FILE` (if given) and of the webhook option: every alert, to
    one generic webhook named `webhook`."""
    config = load_config(path, ruleset) if path is not None else NotifyConfig("--webhook")
    if webhook is None:
        return config
    if not is_http_url(webhook.url):
        raise ConfigError(
            [
                f"{webhook.given_by}: expected an http:// or https:// URL, "
                f"got {shown_url(webhook.url)!r}"
            ]
        )
    if config.receiver(WEBHOOK_SHORTCUT) is not None:
        raise ConfigError(
            [
                f"{webhook.given_by}: {config.source} already has a receiver named "
                f"{WEBHOOK_SHORTCUT!r}"
            ]
        )
    shortcut = ReceiverSpec(WEBHOOK_SHORTCUT, "webhook", webhook.url)
    return replace(config, receivers=(*config.receivers, shortcut))


def load_config(path: str | Path, ruleset: RuleSet) -> NotifyConfig:
    text, unreadable = read_text(path)
    if text is None:
        raise ConfigError([f"{path}: cannot read the config file: {unreadable}"])
    return parse_config(text, str(path), ruleset)


def parse_config(text: str, source: str, ruleset: RuleSet) -> NotifyConfig:
    """Validate a config document for `ruleset`; raise `ConfigError` listing every problem."""
    root, not_yaml = compose(text, source)
    if not_yaml is not None:
        raise ConfigError([not_yaml])
    reader = _ConfigReader(source, ruleset)
    config = reader.read(root)
    if reader.problems:
        raise ConfigError(reader.problems)
    return config


def describe_receiver(spec: ReceiverSpec) -> str:
    """A receiver in two lines, as `sereno check --config` lists it (no credentials)."""
    where = spec.shown_url
    if spec.email is not None:
        host, port = spec.email.smarthost
        where = f"{', '.join(spec.email.to)} via {host}:{port}"
    wants = [f"{spec.min_severity} and above" if spec.min_severity else "every severity"]
    if spec.rules is not None:
        wants.append("rules " + ", ".join(sorted(spec.rules)))
    if spec.services is not None:
        wants.append("services " + ", ".join(sorted(spec.services)))
    if spec.type == "alertmanager":
        wants.append(f"firing alerts re-sent every {format_duration(int(spec.resend_interval))}")
    else:
        wants.append(f"repeated every {format_duration(int(spec.timing.repeat_interval))}")
    if spec.active_time_intervals:
        wants.append("only during " + ", ".join(i.name for i in spec.active_time_intervals))
    if spec.mute_time_intervals:
        wants.append("muted during " + ", ".join(i.name for i in spec.mute_time_intervals))
    if spec.grouping is not None:
        grouping = spec.grouping
        wants.append(
            f"grouped by {', '.join(grouping.by)}, after {format_duration(int(grouping.wait))}, "
            f"then at most every {format_duration(int(grouping.interval))}"
        )
    return f"  {spec.name} ({spec.type}): {where}\n    {'; '.join(wants)}"


def is_http_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def parse_seconds(text: str) -> float | None:
    """Seconds in a duration such as 250ms, 90s, 5m, 4h or 1h30m; None if it is not one."""
    milliseconds = _MILLISECONDS.match(text.strip())
    if milliseconds:
        return int(milliseconds.group(1)) / 1000
    seconds = parse_duration(text)
    return float(seconds) if seconds is not None else None


class _NamesReader(NodeReader):
    """What receivers and maintenance windows read alike: lists of names, and the config's
    time intervals by name."""

    def __init__(
        self,
        source: str,
        intervals: Mapping[str, TimeInterval] | None = None,
        interval_names: Set[str] = frozenset(),
    ) -> None:
        super().__init__(source)
        self._intervals: Mapping[str, TimeInterval] = intervals or {}
        self._interval_names = interval_names  # refused ones too: said once, where they are

    @property
    def found(self) -> list[tuple[int, int, str]]:
        """The problems with their line and column, to be merged with the config's."""
        return list(self._found)

    def _names(self, node: yaml.Node, key: str, label: str | None) -> frozenset[str]:
        items = node.value if isinstance(node, yaml.SequenceNode) else None
        if not items:
            self._problem(node, f"key {key!r}: expected a non-empty list of names", label)
            return frozenset()
        names = (self._string(item, key, label) for item in items)
        return frozenset(name for name in names if name is not None)

    def _time_intervals(
        self, fields: Mapping[str, yaml.Node], key: str, label: str | None
    ) -> tuple[TimeInterval, ...]:
        """The time intervals of the file that `key` of `fields` names."""
        node = fields[key]
        named = sorted(self._interval_names)
        known = f"known: {', '.join(named)}" if named else "the config has none"
        intervals = []
        for name in sorted(self._names(node, key, label)):
            if name in self._intervals:
                intervals.append(self._intervals[name])
            elif name not in self._interval_names:
                self._problem(
                    node, f"key {key!r}: no time interval is named {name!r} ({known})", label
                )
        return tuple(intervals)


class _MaintenanceReader(_NamesReader):
    """Reads a config's `maintenance_windows`: a list of `{name, matchers, time_intervals,
    comment}`."""

    subject_kind = "maintenance window"

    def read(self, node: yaml.Node | None) -> tuple[MaintenanceWindow, ...]:
        if node is None:
            return ()
        if not isinstance(node, yaml.SequenceNode):
            self._problem(node, "'maintenance_windows' must be a list of maintenance windows")
            return ()
        windows: list[MaintenanceWindow] = []
        names: set[str] = set()  # of every window, refused ones too
        for position, entry in enumerate(node.value, start=1):
            window = self._window(entry, position, names)
            if window is not None:
                windows.append(window)
        return tuple(windows)

    def _window(self, node: yaml.Node, position: int, names: set[str]) -> MaintenanceWindow | None:
        if not isinstance(node, yaml.MappingNode):
            self._problem(node, f"maintenance window #{position} must be a mapping")
            return None
        before = len(self._found)
        entries = {str(key.value): value for key, value in node.value}
        name = self._string(entries["name"], "name") if "name" in entries else None
        label = name or f"#{position}"
        if name in names:
            self._problem(node, "duplicate maintenance window name", name)
        elif name is not None:
            names.add(name)
        fields = self._mapping(node, _WINDOW_KEYS, _WINDOW_REQUIRED, label)
        matchers = self._matchers(fields.get("matchers"), label)
        named = "time_intervals" in fields
        intervals = self._time_intervals(fields, "time_intervals", label) if named else ()
        comment = self._optional_string(fields.get("comment"), "comment", label)
        if name is None or len(self._found) != before:
            return None
        return MaintenanceWindow(name, matchers, intervals, comment)

    def _matchers(self, node: yaml.Node | None, label: str) -> tuple[Matcher, ...]:
        """Matchers as `sereno silence add` takes them; as for a silence, one at least must
        not match an alert without the label, or the window would cover every alert."""
        if node is None:
            return ()
        items = node.value if isinstance(node, yaml.SequenceNode) else None
        if not items:
            self._problem(node, "key 'matchers': expected a non-empty list of matchers", label)
            return ()
        matchers = tuple(self._matcher(item, label) for item in items)
        read = tuple(matcher for matcher in matchers if matcher is not None)
        problem = matchers_problem(read, "maintenance window") if len(read) == len(items) else None
        if problem is not None:
            self._problem(node, f"key 'matchers': {problem}", label)
        return read

    def _matcher(self, node: yaml.Node, label: str) -> Matcher | None:
        text = self._string(node, "matchers", label)
        if text is None:
            return None
        try:
            return parse_matcher(text)
        except MatcherError as error:
            self._problem(node, f"key 'matchers': {error}", label)
            return None


class _ConfigReader(_NamesReader):
    subject_kind = "receiver"

    def __init__(self, source: str, ruleset: RuleSet) -> None:
        super().__init__(source)
        self._severities = [severity.name for severity in ruleset.severities]
        self._rules = {spec.name for spec in ruleset.rules}

    def read(self, root: yaml.Node | None) -> NotifyConfig:
        config = NotifyConfig(self._source)
        if not isinstance(root, yaml.MappingNode):
            self._problem(root, f"the config file must be a mapping, got {kind_name(root)}")
            return config
        allowed = (
            "receivers",
            "defaults",
            "external_url",
            "time_intervals",
            "maintenance_windows",
        )
        top = self._mapping(root, allowed, ("receivers",))
        intervals = TimeIntervalReader(self._source)
        self._intervals = intervals.read(top.get("time_intervals"))
        self._found += intervals.found
        self._interval_names = intervals.names
        config = replace(config, time_intervals=tuple(self._intervals.values()))
        windows = _MaintenanceReader(self._source, self._intervals, self._interval_names)
        config = replace(config, maintenance_windows=windows.read(top.get("maintenance_windows")))
        self._found += windows.found
        defaults = self._defaults(top.get("defaults"))
        external_url = top.get("external_url")
        if external_url is not None:
            config = replace(config, external_url=self._url(external_url, "external_url") or "")
        return replace(config, receivers=self._receivers(top.get("receivers"), defaults))

    def _defaults(self, node: yaml.Node | None) -> ReceiverSpec:
        base = ReceiverSpec("", "")
        if node is None:
            return base
        if not isinstance(node, yaml.MappingNode):
            self._problem(node, "'defaults' must be a mapping of receiver settings")
            return base
        fields = self._mapping(
            node,
            (*_TIMING_KEYS, *_FILTER_KEYS, *_QUIET_KEYS, *_GROUP_KEYS),
            what=" in 'defaults'",
        )
        return self._settings(fields, base, None)

    def _receivers(
        self, node: yaml.Node | None, defaults: ReceiverSpec
    ) -> tuple[ReceiverSpec, ...]:
        if not isinstance(node, yaml.SequenceNode):
            if node is not None:
                self._problem(node, "'receivers' must be a list of receivers")
            return ()
        receivers: list[ReceiverSpec] = []
        for position, receiver_node in enumerate(node.value, start=1):
            receiver = self._receiver(receiver_node, position, defaults)
            if receiver is None:
                continue
            if any(other.name == receiver.name for other in receivers):
                self._problem(receiver_node, "duplicate receiver name", receiver.name)
            receivers.append(receiver)
        return tuple(receivers)

    def _receiver(
        self, node: yaml.Node, position: int, defaults: ReceiverSpec
    ) -> ReceiverSpec | None:
        if not isinstance(node, yaml.MappingNode):
            self._problem(node, f"receiver #{position} must be a mapping of receiver keys")
            return None
        entries = {str(key.value): value for key, value in node.value}
        label = self._label(entries.get("name"), position)
        kind = self._type(entries.get("type"), label)
        if kind is None:
            self._problem(
                node, "missing required key 'type'", label
            ) if "type" not in entries else None
            return None
        grouped = () if kind == "alertmanager" else _GROUP_KEYS  # Alertmanager groups itself
        allowed = ("name", "type", *_FILTER_KEYS, *_QUIET_KEYS, *_TIMING_KEYS, *grouped)
        allowed += _TYPE_KEYS[kind]
        before = len(self._found)
        fields = self._mapping(node, allowed, ("name", *_REQUIRED[kind]), subject=label)
        spec = self._settings(fields, replace(defaults, name=label, type=kind), label)
        spec = self._type_settings(kind, fields, spec, label)
        return spec if len(self._found) == before else None

    def _label(self, node: yaml.Node | None, position: int) -> str:
        if isinstance(node, yaml.ScalarNode) and node.tag == STR and str(node.value).strip():
            return str(node.value)
        if node is not None:
            self._problem(node, f"receiver #{position}: key 'name': expected a non-empty string")
        return f"#{position}"

    def _type(self, node: yaml.Node | None, label: str) -> str | None:
        kind = self._string(node, "type", label) if node is not None else None
        if kind is not None and kind not in RECEIVER_TYPES:
            known = ", ".join(RECEIVER_TYPES)
            self._problem(
                node, f"key 'type': unknown receiver type {kind!r} (known: {known})", label
            )
            return None
        return kind

    def _settings(
        self, fields: dict[str, yaml.Node], spec: ReceiverSpec, label: str | None
    ) -> ReceiverSpec:
        """The filters and timing `fields` set, over those of `spec`."""
        timing = spec.timing
        for key in _TIMING_KEYS:
            if key in fields:
                seconds = self._seconds(fields[key], key, label)
                timing = replace(timing, **{key: seconds}) if seconds is not None else timing
        spec = replace(spec, timing=timing)
        if "min_severity" in fields:
            spec = replace(spec, min_severity=self._severity(fields["min_severity"], label))
        if "rules" in fields:
            rules = self._names(fields["rules"], "rules", label)
            for unknown in sorted(rules - self._rules):
                self._problem(fields["rules"], f"key 'rules': no rule is named {unknown!r}", label)
            spec = replace(spec, rules=rules)
        if "services" in fields:
            spec = replace(spec, services=self._names(fields["services"], "services", label))
        if "active_time_intervals" in fields:
            active = self._time_intervals(fields, "active_time_intervals", label)
            spec = replace(spec, active_time_intervals=active)
        if "mute_time_intervals" in fields:
            muted = self._time_intervals(fields, "mute_time_intervals", label)
            spec = replace(spec, mute_time_intervals=muted)
        return replace(spec, grouping=self._grouping(fields, spec.grouping, label))

    def _grouping(
        self, fields: dict[str, yaml.Node], grouping: Grouping | None, label: str | None
    ) -> Grouping | None:
        """The grouping the fields set, over `grouping` (the defaults')."""
        if "group_by" in fields:
            by = self._group_by(fields["group_by"], label)
            grouping = replace(grouping, by=by) if grouping is not None else Grouping(by)
        wait = self._group_timing(fields, "group_wait", grouping, label)
        interval = self._group_timing(fields, "group_interval", grouping, label)
        if grouping is None:
            return None
        return replace(
            grouping,
            wait=grouping.wait if wait is None else wait,
            interval=grouping.interval if interval is None else interval,
        )

    def _group_timing(
        self, fields: dict[str, yaml.Node], key: str, grouping: Grouping | None, label: str | None
    ) -> float | None:
        if key not in fields:
            return None
        if grouping is None:
            self._problem(fields[key], f"key {key!r}: only with group_by", label)
            return None
        return self._seconds(fields[key], key, label)

    def _group_by(self, node: yaml.Node, label: str | None) -> tuple[str, ...]:
        names = self._names(node, "group_by", label)
        if names == {"..."}:
            return ("...",)
        for name in sorted(names):
            if not _LABEL_NAME.match(name):
                self._problem(
                    node,
                    f"key 'group_by': {name!r} is not a label name (or write [...] "
                    "for every alert on its own)",
                    label,
                )
        return tuple(sorted(names))

    def _type_settings(
        self, kind: str, fields: dict[str, yaml.Node], spec: ReceiverSpec, label: str
    ) -> ReceiverSpec:
        if "url" in fields:
            url = self._url(fields["url"], "url", label, secret_path=kind == "slack")
            spec = replace(spec, url=url or "")
        if "headers" in fields:
            spec = replace(spec, headers=self._headers(fields["headers"], label))
        if "channel" in fields:
            spec = replace(spec, channel=self._string(fields["channel"], "channel", label))
        if "resend_interval" in fields:
            seconds = self._seconds(fields["resend_interval"], "resend_interval", label)
            spec = replace(spec, resend_interval=seconds or spec.resend_interval)
        if kind == "email":
            spec = replace(spec, email=self._email(fields, label))
        return spec

    def _email(self, fields: dict[str, yaml.Node], label: str) -> EmailSettings | None:
        smarthost = self._smarthost(fields.get("smarthost"), label)
        sender = self._string(fields["from"], "from", label) if "from" in fields else None
        to = self._names(fields["to"], "to", label) if "to" in fields else frozenset()
        if smarthost is None or sender is None or not to:
            return None
        starttls = fields.get("starttls")
        optional: dict[str, str | None] = {}
        if "username" in fields:
            optional["username"] = self._string(fields["username"], "username", label)
        for key in ("password_file", "ca_file"):
            if key in fields:
                optional[key] = self._readable(fields[key], key, label)
        if ("username" in fields) != ("password_file" in fields):
            self._problem(
                fields.get("username") or fields.get("password_file"),
                "'username' and 'password_file' go together",
                label,
            )
        return EmailSettings(
            smarthost,
            sender,
            tuple(sorted(to)),
            starttls=self._flag(starttls, "starttls", label) if starttls is not None else True,
            **optional,
        )

    def _readable(self, node: yaml.Node, key: str, label: str) -> str | None:
        """A file named in the config, relative to the config's folder: it must be there."""
        name = self._string(node, key, label)
        if name is None:
            return None
        path = Path(self._source).parent / name
        if not path.is_file() or not os.access(path, os.R_OK):
            self._problem(node, f"key {key!r}: cannot read {str(path)!r}", label)
            return None
        return str(path)

    def _smarthost(self, node: yaml.Node | None, label: str) -> tuple[str, int] | None:
        text = self._string(node, "smarthost", label) if node is not None else None
        if text is None:
            return None
        host, _, port = text.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            self._problem(node, f"key 'smarthost': expected HOST:PORT, got {text!r}", label)
            return None
        return host.strip("[]"), int(port)

    def _seconds(self, node: yaml.Node, key: str, label: str | None) -> float | None:
        text = self._typed(
            node, (STR, INT, FLOAT), "a duration", key, label, lambda n: str(n.value)
        )
        if text is None:
            return None
        seconds = float(text) if node.tag != STR else parse_seconds(text)
        if seconds is None or seconds <= 0:
            self._problem(
                node,
                f"key {key!r}: expected a duration such as 500ms, 90s, 5m or 4h, got {text!r}",
                label,
            )
            return None
        return seconds

    def _severity(self, node: yaml.Node, label: str | None) -> str | None:
        name = self._string(node, "min_severity", label)
        if name is not None and name not in self._severities:
            known = ", ".join(self._severities)
            self._problem(
                node, f"key 'min_severity': unknown severity {name!r} (known: {known})", label
            )
            return None
        return name

    def _url(
        self, node: yaml.Node, key: str, label: str | None = None, secret_path: bool = False
    ) -> str | None:
        url = self._string(node, key, label)
        if url is None:
            return None
        if not is_http_url(url):
            shown = shown_url(url, secret_path)
            self._problem(
                node, f"key {key!r}: expected an http:// or https:// URL, got {shown!r}", label
            )
            return None
        return url

    def _headers(self, node: yaml.Node, label: str) -> dict[str, str]:
        if not isinstance(node, yaml.MappingNode):
            self._problem(
                node, "key 'headers': expected a mapping of header names to values", label
            )
            return {}
        headers = {}
        for name_node, value_node in node.value:
            name = self._string(name_node, "headers", label)
            value = self._string(value_node, f"headers: {name}", label)
            if name is not None and value is not None:
                headers[name] = value
        return headers

    def _flag(self, node: yaml.Node, key: str, label: str) -> bool:
        return bool(self._typed(node, (BOOL,), "true or false", key, label, self._construct))
