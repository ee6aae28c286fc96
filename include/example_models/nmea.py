"""Raw NMEA feeds: ``!AIVDM`` sentences with receiver timestamps, decoded with pyais.

A feed file holds one sentence per line, each behind an NMEA 4 tag block whose ``c:``
field is the receiver's UNIX time in seconds (``\\s:station,c:1453813200*hh\\!AIVDM,...``),
the way shore stations and aggregators log them. Position reports (message types 1, 2, 3,
18, 19 and 27) become fixes; other messages are counted and left out. Radio feeds are
noisy, so a sentence that fails its checksum or cannot be decoded is skipped and counted
(its line number is kept for the log); a position report without a receiver timestamp
makes the whole file unusable for replay and is an error naming its line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from example_models.recordings import Recording, RecordingError, build_recording, course

if TYPE_CHECKING:
    from pyais.messages import AISSentence

#: AIS message types that carry a vessel position.
POSITION_TYPES = frozenset({1, 2, 3, 18, 19, 27})
#: AIS "not available" values.
_NO_LAT, _NO_LON, _NO_SPEED = 91.0, 181.0, 102.3


@dataclass
class FeedStats:
    """What reading a feed kept and left out; ``rejected_lines`` names the first few bad lines."""

    positions: int = 0
    other_messages: int = 0
    no_position: int = 0
    rejected: int = 0
    rejected_lines: list[str] = field(default_factory=list)

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        if len(self.rejected_lines) < 10:
            self.rejected_lines.append(f"line {line}: {reason}")


def _receiver_time(sentence: AISSentence, where: str) -> datetime:
    tag_block = sentence.tag_block
    if tag_block is None:
        raise RecordingError(
            f"{where}: position report without a tag block; "
            "a replayable feed needs a receiver timestamp (c:) on every sentence"
        )
    tag_block.init()
    stamp = tag_block.receiver_timestamp
    try:
        return datetime.fromtimestamp(int(stamp), tz=UTC)
    except (TypeError, ValueError):
        raise RecordingError(f"{where}: tag block receiver timestamp c:{stamp!r} is not UNIX seconds") from None


def read_feed(path: Path) -> tuple[Recording, FeedStats]:
    """Decode the position reports of an NMEA feed file into a :class:`Recording`."""
    # pyais takes ~0.1 s to import; every model module is imported at each DAG parse, so only
    # a feed that is actually read pays for it.
    from pyais.exceptions import AISBaseException
    from pyais.messages import (
        AISSentence,
        MessageType1,
        MessageType18,
        MessageType19,
        MessageType27,
        NMEASentenceFactory,
    )

    # The classes pyais decodes POSITION_TYPES into (types 2 and 3 subclass type 1); checked
    # with msg_type because pyais also decodes type 0 as a MessageType1.
    position_classes = (MessageType1, MessageType18, MessageType19, MessageType27)

    stats = FeedStats()
    rows = []
    try:
        lines = Path(path).read_bytes().splitlines()
    except OSError as exc:
        raise RecordingError(f"cannot read NMEA feed {path}: {exc}") from None
    for number, raw in enumerate(lines, start=1):
        raw = raw.strip()
        if not raw or raw.startswith(b"#"):
            continue
        where = f"{path} line {number}"
        try:
            sentence = NMEASentenceFactory.produce(raw)
        except AISBaseException as exc:
            stats.reject(number, f"not an NMEA sentence ({type(exc).__name__})")
            continue
        if not isinstance(sentence, AISSentence):
            stats.other_messages += 1
            continue
        if not sentence.is_valid:
            stats.reject(number, "checksum mismatch")
            continue
        if sentence.frag_cnt != 1:  # position reports fit in one sentence
            stats.other_messages += 1
            continue
        try:
            message = sentence.decode()
        except AISBaseException as exc:
            stats.reject(number, f"cannot decode ({type(exc).__name__})")
            continue
        if message.msg_type not in POSITION_TYPES or not isinstance(message, position_classes):
            stats.other_messages += 1
            continue
        if message.lat == _NO_LAT or message.lon == _NO_LON or message.lat is None or message.lon is None:
            stats.no_position += 1
            continue
        speed = None if message.speed is None or message.speed >= _NO_SPEED else float(message.speed)
        rows.append(
            (
                _receiver_time(sentence, where),
                int(message.mmsi),
                float(message.lat),
                float(message.lon),
                speed,
                course(message.course),
            )
        )
        stats.positions += 1
    return build_recording(str(path), rows), stats
