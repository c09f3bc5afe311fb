"""The visualize page as a reader sees it: colours black text can be read on, and tooltips that say the
right character. The last tests open the page in a real headless Chromium (skipped where there is none;
.ci/run installs Debian's `chromium`)."""

import html
import json
import re
import shutil
import subprocess

import numpy
import pytest

from minirnn import visualize as vis
from minirnn.sample import load_model

from .conftest import TINY_TEXT, train_tiny


# -- contrast, as WCAG 2 defines it ------------------------------------------------------------------------
def luminance(rgb):
    """Relative luminance of an sRGB colour given as 0..255 integers."""
    c = numpy.asarray(rgb, dtype=float) / 255
    c = numpy.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(c @ [0.2126, 0.7152, 0.0722])


def contrast(a, b):
    """WCAG contrast ratio, 1 (none) to 21 (black on white). 4.5 is level AA for small text, 7 level AAA."""
    hi, lo = sorted([luminance(a), luminance(b)], reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def rgb(css):
    """'rgb(1,2,3)' or 'rgb(1, 2, 3)' -> (1, 2, 3)."""
    return tuple(int(v) for v in re.fullmatch(r"rgb\((\d+), ?(\d+), ?(\d+)\)", css).groups())


BLACK = (0, 0, 0)


def test_black_text_has_contrast_7_on_every_colour_of_both_maps():
    shades = [vis._diverging(v) for v in numpy.linspace(-1, 1, 201)]
    shades += [vis._sequential(p) for p in numpy.linspace(0, 1, 101)] + [vis._sequential(float("nan"))]
    worst = min(contrast(BLACK, rgb(s)) for s in shades)
    assert worst >= 7, worst
    # the ends are the darkest, so they are the worst cases
    assert worst == min(contrast(BLACK, c) for c in (vis.NEGATIVE, vis.POSITIVE, vis.CONFIDENT))


def test_the_maps_end_on_their_colours_and_pass_through_white():
    assert rgb(vis._diverging(-1)) == vis.NEGATIVE and rgb(vis._diverging(1)) == vis.POSITIVE
    assert rgb(vis._diverging(0)) == rgb(vis._sequential(0)) == (255, 255, 255)
    assert rgb(vis._sequential(1)) == vis.CONFIDENT
    assert rgb(vis._sequential(float("nan"))) == vis.NO_PREDICTION


# -- a trace made by hand, so that every awkward character is on the page -----------------------------------
TEXT = "a b\n\"<&'\té"
SHOWN = ["a", "\u00a0", "b", "↵", '"', "<", "&", "'", "→", "é"]  # what each span draws
NAMED = ["'a'", "space", "'b'", "newline", "'\"'", "'<'", "'&'", '"\'"', "tab", "'é'"]  # as a tooltip says it
TOP = [" ", "\n", "\t", "'", '"', "<", "&", "é", "\u00a0", "e"]  # the most likely next character, made up
TOP_NAMED = ["space", "newline", "tab", '"\'"', "'\"'", "'<'", "'&'", "'é'", "'\\xa0'", "'e'"]
ACTS = ["-1.000", "-0.778", "-0.556", "-0.333", "-0.111", "+0.111", "+0.333", "+0.556", "+0.778", "+1.000"]
CONFIDENCE = ["0.111", "0.222", "0.333", "0.444", "0.556", "0.667", "0.778", "0.889", "1.000"]


def hand_trace():
    acts = numpy.zeros((len(TEXT), 2))
    acts[:, 1] = numpy.linspace(-1, 1, len(TEXT))
    confidence = numpy.linspace(0, 1, len(TEXT))
    confidence[0] = numpy.nan
    return vis.Trace(TEXT, acts, confidence, [(c, 0.5) for c in TOP], layer=0, state="h")


EXPECTED_TITLES = (
    [f"h[1] = {a}; next most likely {n} (0.50)" for a, n in zip(ACTS, TOP_NAMED)]
    + ["no prediction for the first character"]
    + [f"p({c}) = {p}; next most likely {n} (0.50)" for c, p, n in zip(NAMED[1:], CONFIDENCE, TOP_NAMED[1:])]
)


def test_tooltips_name_whitespace_instead_of_escaping_it():
    page = vis.to_html(hand_trace(), unit=1)
    titles = [html.unescape(t) for t in re.findall(r'<span style="[^"]*" title="([^"]*)"', page)]
    assert titles == EXPECTED_TITLES


# -- in a real browser -------------------------------------------------------------------------------------
def find_chromium():
    for name in ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium here (Debian: apt-get install chromium)")


def chromium(tmp_path, *args):
    """Run headless Chromium with a fresh profile and nothing fetched from the network; return its stdout."""
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--force-color-profile=srgb",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    proc = subprocess.run(
        [find_chromium(), *flags, *args], check=False, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


# Appended to a copy of the page (the page itself has no script): it writes what the browser made of
# every span into the DOM, as JSON with every non-ASCII character escaped, for --dump-dom to print.
READ_SPANS = """<script>
const spans = [...document.querySelectorAll("span")].map(s => {
  const style = getComputedStyle(s);
  return {where: s.parentElement.className, title: s.getAttribute("title"), text: s.textContent,
          background: style.backgroundColor, colour: style.color};
});
const out = document.createElement("pre");
out.id = "spans";
out.textContent = JSON.stringify(spans).replace(/[\\u007f-\\uffff]/g,
  c => "\\\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
document.body.appendChild(out);
</script>"""


def spans_in_browser(page, tmp_path):
    """Every span of ``page`` as the browser parsed and styled it: dicts of where, title, text,
    background and colour."""
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", READ_SPANS + "</body>"), encoding="utf-8")
    dom = chromium(tmp_path, "--dump-dom", probe.as_uri())
    found = re.search(r'<pre id="spans">(.*?)</pre>', dom, re.DOTALL)
    assert found, dom[-2000:]
    return json.loads(html.unescape(found.group(1)))


def test_browser_reads_every_tooltip_and_character_as_meant(tmp_path):
    spans = spans_in_browser(vis.to_html(hand_trace(), unit=1), tmp_path)
    text = [s for s in spans if s["where"] == "text"]
    assert [s["title"] for s in text] == EXPECTED_TITLES
    assert [s["text"] for s in text] == SHOWN * 2
    assert rgb(text[0]["background"]) == vis.NEGATIVE  # the map's ends, as the browser drew them
    assert rgb(text[len(TEXT) - 1]["background"]) == vis.POSITIVE


def test_browser_page_of_a_trained_model(tmp_path):
    """The page of a real (tiny) model: every tooltip well formed, every character readable, and a
    screenshot (screenshot.png in the test's folder) whose key shows the map's two ends."""
    run, _ = train_tiny(tmp_path, hidden_size=12, num_layers=1, max_steps=20)
    model, vocab, _ = load_model(run)
    text = TINY_TEXT[:300]
    tr, unit = vis.visualize(model, vocab, text)
    page = vis.to_html(tr, unit, title="a tiny LSTM after 20 steps")
    spans = spans_in_browser(page, tmp_path)

    text_spans = [s for s in spans if s["where"] == "text"]
    assert len(text_spans) == 2 * len(text)
    char = r"(space|newline|tab|'[^']'|\"'\")"
    act = re.compile(rf"h\[{unit}\] = [+-]\d\.\d{{3}}; next most likely {char} \(\d\.\d\d\)")
    conf = re.compile(rf"p\({char}\) = \d\.\d{{3}}; next most likely {char} \(\d\.\d\d\)")
    titles = [s["title"] for s in text_spans]
    assert all(act.fullmatch(t) for t in titles[: len(text)]), titles[: len(text)]
    assert titles[len(text)] == "no prediction for the first character"
    assert all(conf.fullmatch(t) for t in titles[len(text) + 1 :]), titles[len(text) + 1 :]
    assert any("next most likely space" in t for t in titles)  # the case that read '\xa0'
    assert not any("\\" in t for t in titles)

    # contrast of what the browser drew: every character of both panels, and the keys' labels
    ratios = [
        contrast(rgb(s["colour"]), rgb(s["background"])) for s in spans if s["where"] in ("text", "key")
    ]
    assert len(ratios) == 2 * len(text) + 6 and min(ratios) >= 7, min(ratios)

    shot = tmp_path / "screenshot.png"
    (tmp_path / "page.html").write_text(page, encoding="utf-8")
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1000,1100", (tmp_path / "page.html").as_uri())
    from matplotlib.image import imread

    pixels = {tuple(p) for p in numpy.round(imread(shot)[..., :3] * 255).astype(int).reshape(-1, 3)}
    assert {vis.NEGATIVE, vis.POSITIVE, vis.CONFIDENT} <= pixels
