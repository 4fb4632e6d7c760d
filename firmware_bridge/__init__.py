"""The microcontroller link (station controller, base-station monitor firmware).

Not built yet: no open issue covers it. Live base-station events arrive today as JSONL
over UDP or a followed file (``drivers/events``).
"""
