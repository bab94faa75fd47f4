"""The topic layout of one box: ``madoguchi/v1/<site>/<box>/<leaf>``.

| leaf           | direction | retained | QoS | payload schema            |
|----------------|-----------|----------|-----|---------------------------|
| status         | box ->    | yes      | 1   | status.schema.json (the will sets offline) |
| health         | box ->    | yes      | 1   | health.schema.json        |
| usage          | box ->    | no       | 1   | usage.schema.json (spooled) |
| event          | box ->    | no       | 1   | event.schema.json (spooled) |
| cmd/<name>     | -> box    | no       | 1   | cmd.schema.json           |
| cmd_result     | box ->    | no       | 1   | cmd_result.schema.json    |
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from madoguchi.config import MqttSettings

ROOT = "madoguchi/v1"


@dataclass(frozen=True)
class Topics:
    site: str
    box: str

    @classmethod
    def for_settings(cls, mqtt: MqttSettings) -> Topics:
        return cls(mqtt.site, mqtt.box_id or socket.gethostname().split(".")[0])

    @property
    def prefix(self) -> str:
        return f"{ROOT}/{self.site}/{self.box}"

    @property
    def status(self) -> str:
        return f"{self.prefix}/status"

    @property
    def health(self) -> str:
        return f"{self.prefix}/health"

    @property
    def usage(self) -> str:
        return f"{self.prefix}/usage"

    @property
    def event(self) -> str:
        return f"{self.prefix}/event"

    @property
    def commands(self) -> str:
        """The filter the box subscribes to: its own commands only."""
        return f"{self.prefix}/cmd/+"

    @property
    def cmd_result(self) -> str:
        return f"{self.prefix}/cmd_result"

    def command_name(self, topic: str) -> str | None:
        """``set_config`` for ``<prefix>/cmd/set_config``; None for any other topic."""
        head = f"{self.prefix}/cmd/"
        name = topic[len(head) :] if topic.startswith(head) else ""
        return name if name and "/" not in name else None


# What an admin subscribes to for the whole fleet (or one site: replace the first +).
FLEET_STATUS = f"{ROOT}/+/+/status"
FLEET_HEALTH = f"{ROOT}/+/+/health"
FLEET_USAGE = f"{ROOT}/+/+/usage"
FLEET_EVENT = f"{ROOT}/+/+/event"


def split_topic(topic: str) -> tuple[str, str, str] | None:
    """(site, box, leaf) of a fleet topic, or None if it is not one."""
    parts = topic.split("/")
    if len(parts) < 5 or "/".join(parts[:2]) != ROOT:
        return None
    return parts[2], parts[3], "/".join(parts[4:])
