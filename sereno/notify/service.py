"""The notification side of a running service: its receivers, the planner that decides who
hears what, the delivery that tells them, and taking a new config on a reload; and the fire
drill of `sereno notify-test`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sereno.notify.acks import Acks
from sereno.notify.config import NotifyConfig, ReceiverSpec, WebhookOption, receivers_config
from sereno.notify.delivery import Delivery, NoticeOutbox
from sereno.notify.grouping import Groups
from sereno.notify.notice import Notice
from sereno.notify.planner import Planner
from sereno.notify.senders import build_sender
from sereno.notify.silencing import Silences
from sereno.notify.transport import DeliveryError, Sender
from sereno.rules.rulefmt import RuleSet


def senders_of(config: NotifyConfig) -> dict[str, Sender]:
    return {spec.name: build_sender(spec) for spec in config.receivers}


def fire_drill(
    receivers: Sequence[ReceiverSpec], notice: Notice
) -> Iterator[tuple[ReceiverSpec, DeliveryError | None]]:
    """Send `notice` to each receiver straight away; each with why it failed, if it did."""
    for spec in receivers:
        sender = build_sender(spec)
        try:
            sender.send([notice])
            yield spec, None
        except DeliveryError as error:
            yield spec, error
        finally:
            sender.close()


class Notifications:
    def __init__(
        self,
        outbox: NoticeOutbox,
        path: str | None,
        webhook: WebhookOption | None,
        config: NotifyConfig,
        ruleset: RuleSet,
        silences: Silences | None = None,
        acks: Acks | None = None,
    ) -> None:
        self._path, self._webhook = path, webhook  # `--config FILE`, `--webhook URL` or the like
        self.config = config  # as read from them
        self.silences = silences or Silences()  # kept across reloads
        self.acks = acks or Acks()
        self.groups = Groups()  # the grouping receivers' groups, saved with the state
        self.planner = self.planner_for(config, ruleset)
        self.delivery = Delivery(
            outbox, self.config.receivers, senders_of(self.config), self.planner
        )

    def read(self, ruleset: RuleSet) -> NotifyConfig:
        """The config, read again for `ruleset` (raises `ConfigError` if it does not fit)."""
        return receivers_config(self._path, self._webhook, ruleset)

    def planner_for(self, config: NotifyConfig, ruleset: RuleSet) -> Planner:
        """A planner for `config` and `ruleset`, with the service's silences and acks."""
        return Planner(config, ruleset, self.silences, self.acks, self.groups)

    def use(self, config: NotifyConfig, planner: Planner) -> None:
        """Deliver to the receivers of `config` from now on (`planner` plans for it)."""
        self.config, self.planner = config, planner
        self.delivery.reconfigure(config.receivers, senders_of(config), planner)
