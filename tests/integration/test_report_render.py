"""The monthly report as a reader gets it (R6): the PDF WeasyPrint writes, rendered to PNG with
poppler's pdftoppm; the HTML opened in headless Chromium (DOM, screenshot, and Chromium's own
print to PDF to see which fonts it used). Chinese must come out in the CJK font, not as boxes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.fixtures.browser import dump_dom, screenshot
from tests.fixtures.services import REQUIRE_ENV, services_required
from tests.integration.test_report import LAST, Demo, _make

CHART_GREEN = (0x3A, 0x9D, 0x5D)
CJK = re.compile(r"Noto.?Sans.?CJK", re.I)
PROBE = """<script>
const c = document.createElement("canvas").getContext("2d");
const width = (font) => { c.font = "40px " + font; return c.measureText("OA report 2026 Wmi").width; };
const named = width("'Noto Sans CJK SC'"), missing = width("'No Such Font 7f3a'");
document.body.setAttribute("data-cjk-font", named !== missing ? "present" : "missing:" + named);
</script>"""


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        message = f"{name} not installed (apt-get install poppler-utils)"
        if services_required():
            pytest.fail(f"{message} [{REQUIRE_ENV}=1: missing services fail]", pytrace=False)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    tmp = tmp_path_factory.mktemp("render")
    d: Demo = _make(tmp, f"sqlite:///{tmp}/records.db", "sqlite")
    html, pdf = tmp / "report.html", tmp / "report.pdf"
    for fmt, path in (("html", html), ("pdf", pdf)):
        code, _, err = d.cli(["report", "monthly", "--month", LAST, "--lang", "zh", "--format", fmt, "-o", str(path)])
        assert code == 0, err
    d.db.dispose()
    yield html, pdf


def _fonts(pdf: Path) -> str:
    return subprocess.run([_tool("pdffonts"), str(pdf)], capture_output=True, text=True, check=True).stdout


def _share(img: Image.Image, colour: tuple[int, int, int], tolerance: int = 12) -> float:
    rgb = img.convert("RGB").resize((img.width // 2, img.height // 2))
    pixels = list(rgb.get_flattened_data()) if hasattr(rgb, "get_flattened_data") else list(rgb.getdata())
    hits = sum(1 for p in pixels if all(abs(p[i] - colour[i]) <= tolerance for i in range(3)))
    return hits / len(pixels)


def _ink(img: Image.Image) -> float:
    grey = img.convert("L").resize((img.width // 2, img.height // 2))
    pixels = list(grey.get_flattened_data()) if hasattr(grey, "get_flattened_data") else list(grey.getdata())
    return sum(1 for p in pixels if p < 200) / len(pixels)


def test_pdf_first_page_renders_with_the_cjk_font(rendered: tuple[Path, Path], tmp_path: Path) -> None:
    _html, pdf = rendered
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert CJK.search(_fonts(pdf))  # embedded: Chinese is not tofu
    text = subprocess.run(
        [_tool("pdftotext"), "-f", "1", "-l", "1", str(pdf), "-"], capture_output=True, text=True, check=True
    )
    assert "月度运维分析报告" in text.stdout and "管理摘要" in text.stdout  # the summary page comes first
    subprocess.run(
        [_tool("pdftoppm"), "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True
    )
    png = next(tmp_path.glob("page*.png"))
    img = Image.open(png)
    assert 0.68 < img.width / img.height < 0.74  # A4 portrait
    assert _ink(img) > 0.02  # text and tiles drawn, not a blank page
    assert _share(img, CHART_GREEN) > 0.002  # the availability chart's bars on the summary page


def test_html_renders_in_chromium_with_charts_and_fonts(rendered: tuple[Path, Path], tmp_path: Path) -> None:
    html, _pdf = rendered
    dom = dump_dom(html)
    for section in ("summary", "availability", "faults", "changes", "backups", "audits", "problems", "health-runs"):
        assert f'id="{section}"' in dom, section
    svgs = re.findall(r"<svg class=\"chart\".*?</svg>", dom, re.S)
    assert len(svgs) >= 5
    assert all(re.search(r'class="(bar|line|pt)"', s) for s in svgs)  # no empty charts
    shot = screenshot(html, tmp_path / "page.png", width=1000, height=1400)
    img = Image.open(shot)
    assert _ink(img) > 0.02 and _share(img, CHART_GREEN) > 0.002
    # The report's font stack starts with Noto Sans CJK SC: the browser must have it by name, or
    # Chinese would come from whatever fallback (or boxes). A probe copy of the page measures the
    # same Latin text in that font and in a font that does not exist; equal widths = not found.
    probe = tmp_path / "probe.html"
    probe.write_text(html.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    probed = dump_dom(probe)
    assert 'data-cjk-font="present"' in probed, re.findall(r"data-cjk-font=\"[^\"]*\"", probed)
