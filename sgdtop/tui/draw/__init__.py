"""Drawing code: pure functions from the state's view snapshots to Rich ``Text``.

No Textual here (widgets only adapt state to these functions, at their own size), so all
of it is tested as plain functions. Every function is NaN/inf-safe: a non-finite value is
shown as such (``nan``, ``+inf``; ``×``/``↑``/``↓`` in sparklines) and never breaks the
drawing. One module per concept: :mod:`.palette` (colors), :mod:`.numbers` (spellings),
:mod:`.layout` (fitting text in a width), :mod:`.sparkline`, :mod:`.canvas` (the braille
canvas and plotting helpers), :mod:`.header`, :mod:`.table` (the top-k table),
:mod:`.eigen_chart` (Fig. 2), :mod:`.lines_chart` (several runs), :mod:`.slices_chart`
(Fig. 7), :mod:`.log`, and the compare (:mod:`.compare`) and sweep (:mod:`.sweep`)
views' tables. See docs/design.md (the TUI).
"""
