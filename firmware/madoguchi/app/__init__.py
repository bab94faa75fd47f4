"""The app part: how the parts are put together for each way the box runs.

- :mod:`~madoguchi.app.runner`: the one session runner (capture thread, interpreter worker, the
  counter's state, sinks); ``run``, ``replay``, ``demo`` and ``calibrate`` assemble it.
- :mod:`~madoguchi.app.capture`: source → front end on a worker thread.
- :mod:`~madoguchi.app.stages`: ASR and MT on their own thread, early work, live captions.
- :mod:`~madoguchi.app.sinks`: what receives the runner's events (printer, faces, telemetry,
  systemd, frame recorder, calibration collector).
- :mod:`~madoguchi.app.records`: the printed records (``--json`` lines and the text form).
- :mod:`~madoguchi.app.parts`: the front end, the interpreter and a recording's source, built from settings.
"""
