"""Reading settings written in YAML (a config file, a recipes file, a key=value on the command line) so that
whatever the text holds it is either loaded as plain values or refused in one line.

PyYAML's safe loader already refuses tags that build objects; it still expands aliases (a 274-byte file of
nested aliases became megabytes when the run saved its config), recurses once per nesting level (a 10,000-deep
mapping is a RecursionError) and keeps the last of two equal keys silently. This loader refuses all three.
"""
from __future__ import annotations

from typing import Any

import yaml

MAX_BYTES = 1 << 20  # a settings file is a few hundred bytes; a megabyte is a mistake
MAX_DEPTH = 20  # settings nest two or three levels (model_args.x, a recipe's settings)


class Refused(Exception):
    """Why the text is not loaded, with the line it names."""


class SettingsLoader(yaml.SafeLoader):
    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise Refused(f"uses a YAML anchor or alias (&, *) at line {line}; write each value out")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Refused(f"nests more than {MAX_DEPTH} levels deep at line {line}; settings nest a few levels")
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    from lowdata.errors import shown

                    raise Refused(f"gives the key {shown(key)} twice (lines {seen[key]} and {line}); keep one")
                seen[key] = line
            except TypeError:  # an unhashable key (a list): the constructor says so below
                pass
        return super().construct_mapping(node, deep)



def load_text(text: str) -> Any:
    """The plain values in `text`; Refused or yaml.YAMLError when it is not loaded."""
    if len(text.encode("utf-8", errors="replace")) > MAX_BYTES:
        raise Refused(f"is larger than {MAX_BYTES >> 20} MB; settings take a few hundred bytes")
    loader = SettingsLoader(text)
    try:
        return loader.get_single_data()
    except RecursionError:  # a structure deep inside a single scalar's parse: never a settings file
        raise Refused("nests too deeply; settings nest a few levels") from None
    finally:
        loader.dispose()
