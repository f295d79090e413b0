"""Names shared by the Logger, its sinks and the reader."""

MARKER = ".pyexp"
EVENTS_FILE = "events.pb"
FORMAT_VERSION = 1

# Kinds of queued items; a scalar is the plain 4-tuple (it, tag, value, wall_time), which keeps
# the enqueue cheap, everything else a 5-tuple ending with its kind.
TEXT, FIGURE, CHECKPOINT = 1, 2, 3
SCALARS_FILE = "scalars.jsonl"
TEXT_FILE = "text.jsonl"
