"""Fleet telemetry over MQTT: status, health, usage and events out, commands in.

Topics live under ``madoguchi/v1/<site>/<box>/`` (``topics.py``); every payload has a JSON Schema
in ``schemas/``. Usage and events go through a SQLite spool first (``spool.py``) and leave it
only when the broker has acknowledged them, so nothing counted is lost to a crash, a power cut
or a broker that is down.
"""
