"""Soak: a long replayed counter day through ``madoguchi run --replay`` with every sink: RSS slope and idle CPU.

    python -m tests.bench.soak [--minutes 30] [--out reports/bench/soak] [--quick]

The recording (built once, cached like every generated artefact: ``tests/cache.py``) is the bundled
4-mic demo conversation (``data/demo/counter-demo.flac``, ten turns in 28.8 s) repeated, with long
stretches of an idle counter between the conversations: the recording's own noise floor
(independent -80 dBFS per mic, as the simulator made it) with, every 20-60 s, a short burst of the
neighbouring counter's voice cut from the demo's own babble-only gaps (off both sides' sectors:
the front end must reject it, not interpret it). Idle stretches last 2-11 minutes, one of them longer
than ``[display] idle_sleep_s`` (600 s) so the panels go to sleep.

The box runs as a real service: ``python -m madoguchi run --no-system-config --config C --replay F``
(paced like live audio), ``C`` being counter-demo.toml plus ``[mqtt]`` pointing at a real mosquitto
this bench starts (TLS, a box login, the shipped ACL: ``tests/mqtt_broker.py``), ``[display] driver =
"dummy"`` (both faces drawn by luma's dummy devices), the buttons and LEDs on gpiozero's mock pin
factory (``GPIOZERO_PIN_FACTORY=mock``), and ``NOTIFY_SOCKET``/``WATCHDOG_USEC`` at a socket this bench
reads (READY, STATUS, WATCHDOG as under systemd, ``WatchdogSec=30`` as the unit), at the unit's ``Nice=-5``
when allowed. Every second the bench reads the process tree's VmRSS and each thread's CPU time
(``/proc/PID/task/*/schedstat``, ns), and what the rest of the machine used meanwhile (``/proc/stat``:
on a shared machine other jobs slow ASR down, so latency is only meaningful when that column is
low), and from the recording's own timeline knows which seconds are idle (nobody speaking, and the
last conversation's words already out: a margin after each conversation) and which are busy.

Peers measured in the same run, on the first minutes of the same recording: ``run --stages frontend``
with the same sinks (so the difference to the main run is the interpreter's idle overhead), and
``run --stages frontend`` with no sinks at all (no faces, buttons, MQTT: the front end alone). The two
peers run side by side (each is a few % of a core; CPU time is per process).

Thread names: the child is started through a short bootstrap (``BOOTSTRAP``) that gives each Python thread its
name at the OS level (prctl, 15 characters) and then runs ``madoguchi``'s own ``__main__`` with the
same arguments, so the report can say *which* thread burns the idle CPU. ``--plain`` runs
``python -m madoguchi`` itself.

Output: a table on stdout (and ``soak.md``), ``soak.png`` (RSS and CPU over time, idle stretches
shaded), ``samples.json`` and the children's logs in ``--out``. Exit status: 1 if the service crashed
(non-zero exit, a traceback, or it stopped before the recording ended) or leaked clearly (see
``LEAK_MB_PER_H``); an idle CPU over the 3 % bar is reported, not failed: a bench measures.
"""
