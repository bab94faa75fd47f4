"""The admin side of fleet telemetry: run on an office machine, not on a box.

``connect`` opens the broker connection from the same ``[mqtt]`` table the boxes use;
``status`` shows every box at once from the retained status/health messages; ``collect``
stores usage and events in a local SQLite file through a persistent MQTT session (the broker
queues while the collector is away); ``report`` turns that file into HTML with charts.
"""
