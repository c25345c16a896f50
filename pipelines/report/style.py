"""What every report page carries inline (no file, font or script from anywhere else): the stylesheet, the
player script, and the colour each archive voice gets on every page."""

from __future__ import annotations

import hashlib

#: distinguishable on white and for the common colour-vision deficiencies (Okabe-Ito, then Tol's muted set)
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#332288", "#117733", "#882255",
           "#999933", "#44AA99", "#AA4499", "#6699CC", "#661100", "#DDCC77")
UNLINKED_COLOUR = "#B0B0B0"


def voice_colour(label: str, kind: str, order: dict[str, int]) -> str:
    """The voice's colour: by its rank in the archive (longest voices get the clearest colours), the same on
    every page; unlinked speakers are grey."""
    if kind == "unlinked":
        return UNLINKED_COLOUR
    rank = order.get(label)
    if rank is None:
        rank = int(hashlib.sha1(label.encode("utf-8")).hexdigest(), 16)
    return PALETTE[rank % len(PALETTE)]


CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1100px;
       padding: 1.2em 1.5em 3em; color: #1d1d1f; background: #fff; }
h1 { font-size: 1.5em; margin: .2em 0 .4em; } h2 { font-size: 1.15em; margin: 1.6em 0 .5em; }
nav { font-size: .9em; margin-bottom: .8em; } nav a { margin-right: 1em; }
a { color: #0b57d0; text-decoration: none; } a:hover { text-decoration: underline; }
table { border-collapse: collapse; width: 100%; font-size: .93em; }
th, td { text-align: left; padding: .32em .6em; border-bottom: 1px solid #e6e6e6; vertical-align: top; }
th { background: #f6f6f7; font-weight: 600; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: .85em; height: .85em; border-radius: 2px; margin-right: .4em;
          vertical-align: -1px; }
.muted { color: #666; } .summary { color: #444; margin: .2em 0 1em; }
.bar { display: inline-block; height: .7em; border-radius: 2px; vertical-align: middle; }
.timeline { position: relative; border: 1px solid #ddd; border-radius: 4px; background: #fafafa; margin: .4em 0; }
.lane { position: relative; height: 28px; border-bottom: 1px solid #eee; }
.lane:last-child { border-bottom: none; }
.lane-name { position: absolute; left: 0; width: 122px; top: 0; bottom: 0; padding: 5px 6px 0; font-size: .78em;
             color: #333; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; border-right: 1px solid #ddd;
             background: #fff; box-sizing: border-box; }
.track { position: absolute; left: 130px; right: 4px; top: 0; bottom: 0; }
.turn { position: absolute; top: 4px; height: 20px; min-width: 2px; border: none; padding: 0; margin: 0;
        border-radius: 2px; cursor: pointer; opacity: .88; }
.turn:hover, .turn:focus { opacity: 1; outline: 2px solid #111; outline-offset: 0; z-index: 3; }
.turn.playing { outline: 2px solid #111; }
.axis { position: relative; height: 18px; font-size: .72em; color: #777; margin: 0 4px .5em 130px; }
.axis span { position: absolute; transform: translateX(-50%); }
.playhead { position: absolute; top: 0; bottom: 0; width: 2px; background: #d00; pointer-events: none; z-index: 4;
            left: 130px; display: none; }
td:first-child { white-space: nowrap; }
audio { width: 100%; margin: .3em 0 .2em; }
.pairs td { white-space: nowrap; }
"""

#: the recording page's player: a click on a turn (or on a turn's time in a table) seeks the audio there and
#: plays; the playhead follows the audio; #t=SECONDS in the address seeks on load
SCRIPT = """
(function () {
  var audio = document.getElementById('player');
  var head = document.getElementById('playhead');
  var duration = parseFloat(document.body.getAttribute('data-duration')) || 0;
  function seek(seconds) {
    if (!audio) { return; }
    var go = function () { audio.currentTime = seconds; var p = audio.play(); if (p && p.catch) { p.catch(function () {}); } };
    if (audio.readyState >= 1) { go(); } else { audio.addEventListener('loadedmetadata', go, { once: true }); audio.load(); }
  }
  document.querySelectorAll('[data-start]').forEach(function (element) {
    element.addEventListener('click', function (event) {
      event.preventDefault();
      document.querySelectorAll('.turn.playing').forEach(function (t) { t.classList.remove('playing'); });
      if (element.classList.contains('turn')) { element.classList.add('playing'); }
      seek(parseFloat(element.getAttribute('data-start')));
    });
  });
  if (audio && head && duration > 0) {
    audio.addEventListener('timeupdate', function () {
      head.style.display = 'block';
      // the lanes' tracks start 130 px in and end 4 px before the right edge (see .track)
      head.style.left = 'calc(130px + (100% - 134px) * ' + Math.min(audio.currentTime / duration, 1) + ')';
    });
  }
  var match = /[#&]t=([0-9.]+)/.exec(window.location.hash);
  if (match) { seek(parseFloat(match[1])); }
})();
"""
