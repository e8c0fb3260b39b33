"""The help screen every sgdtop app shows on ``?``: its :attr:`HelpScreen.TEXT` (Rich
markup) in a scrollable box; ``?``, Esc or ``q`` closes it."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    """The keys of an app and the definitions of what it shows (:attr:`TEXT`)."""

    #: The help text (Rich markup); each app's subclass sets it.
    TEXT: ClassVar[str] = ""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close"),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(self.TEXT, id="help-body")
